"""The NIST XDS Toolkit's RAD-68 test data: KOS manifests with the submission metadata an Imaging
Document Source sends with them (corpus INDEX.md, caveat 2: the metadata.xml files use ebRIM 2.1
element names, some under a made-up 3.0 namespace, and symbolic ids the toolkit fills in). This
module turns one into the ebRIM 3.0 SubmitObjectsRequest a real source sends."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from tests.imaging.conftest import CORPUS
from xds.namespaces import LCM, RIM

STD = CORPUS / "dicom/nist-toolkit/it-tests/src/test/resources/external_cache/ImageCache/std"
TESTDATA = CORPUS / "dicom/nist-toolkit/xdstools2/src/main/webapp/toolkitx/testkit/testdata"
DOMAIN = "1.3.6.1.4.1.21367.2005.13.20.1000"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
_ASSOCIATION = "urn:oasis:names:tc:ebxml-regrep:AssociationType:"
_NEEDS_ID = ("Classification", "ExternalIdentifier", "Association")


@dataclass(frozen=True)
class KosSample:
    name: str
    metadata: Path
    kos: Path
    selftest: Path | None  # another KOS of the same study, not the one the metadata describes


def samples() -> list[KosSample]:
    out = []
    for metadata in sorted([*STD.glob("*/kos/metadata.xml"), *TESTDATA.glob("*/metadata.xml")]):
        d = metadata.parent
        name = d.parent.name if d.name == "kos" else d.name
        selftest = d / "kos-selftest.dcm"
        out.append(KosSample(name, metadata, d / "kos.dcm", selftest if selftest.exists() else None))
    return out


def submit_objects_request(path: Path) -> etree._Element:
    """The sample's metadata as an ebRIM 3.0 lcm:SubmitObjectsRequest."""
    src = etree.parse(str(path), etree.XMLParser(remove_comments=True)).getroot()
    lcm = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    rol = etree.SubElement(lcm, f"{{{RIM}}}RegistryObjectList")
    counter = itertools.count(1)
    leaf = next(e for e in src if isinstance(e.tag, str) and etree.QName(e).localname.endswith("RegistryObjectList"))
    for obj in leaf:
        if not isinstance(obj.tag, str) or etree.QName(obj).localname == "ObjectRef":
            continue
        rol.append(_convert(obj, None, counter))
    return lcm


def _convert(el: etree._Element, parent_id: str | None, counter: itertools.count) -> etree._Element:
    local = etree.QName(el).localname
    out = etree.Element(f"{{{RIM}}}{local}", dict(el.attrib))
    if local in _NEEDS_ID and not out.get("id"):
        out.set("id", f"urn:uuid:{uuid.uuid4()}" if local != "Association" else f"Association{next(counter)}")
    if local == "ExternalIdentifier":
        out.set("registryObject", parent_id or "")
        if out.get("identificationScheme") == SS_UNIQUE_ID:
            out.set("value", f"2.25.{uuid.uuid4().int}")  # the toolkit's $uniqueid$
    if local == "Association" and ":" not in out.get("associationType", ""):
        out.set("associationType", _ASSOCIATION + out.get("associationType", ""))
    out.text = el.text
    for child in el:
        if isinstance(child.tag, str):
            out.append(_convert(child, out.get("id"), counter))
    return out
