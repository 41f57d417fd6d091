"""Our schemas, the official ones, and the conformance samples they are compared on.

"Official" is the rahulsom/ihe-iti copy of the IHE XDS.b / XDS-I.b schemas and the OASIS ebRS 3.0
schemas (see shared/corpus/INDEX.md). The samples are the ebRIM 3.0 message bodies of the NIST XDS
Toolkit testkit: stand-alone request files and the example responses embedded in test plans.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
OURS = REPO / "schemas"
OFFICIAL = CORPUS / "schemas" / "ihe-iti-rahulsom" / "iti"
OFFICIAL_WSDL = OFFICIAL / "wsdl"
DCM4CHEE_WSDL = (
    CORPUS
    / "schemas"
    / "dcm4chee-xds"
    / "dcm4chee-xds2-xcai-ws"
    / "src"
    / "main"
    / "resources"
    / "META-INF"
    / "wsdl"
)
IPF_WSDL = CORPUS / "schemas" / "ipf" / "commons" / "ihe" / "xds" / "src" / "main" / "resources" / "wsdl"
NIST_TESTKIT = CORPUS / "nist-testkit"

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
XDSI = "urn:ihe:rad:xdsi-b:2009"

# schema document of each message namespace, relative to our xsd/ and to the official schema/ folder
SCHEMA_DOCUMENTS = {
    LCM: "ebRS/lcm.xsd",
    QUERY: "ebRS/query.xsd",
    RS: "ebRS/rs.xsd",
    XDSB: "IHE/XDS.b_DocumentRepository.xsd",
    XDSI: "IHE/XDSI.b_ImagingDocumentSource.xsd",
}

# the body elements of the transactions our WSDLs carry
MESSAGE_ELEMENTS = {
    f"{{{LCM}}}SubmitObjectsRequest",
    f"{{{LCM}}}RemoveObjectsRequest",
    f"{{{QUERY}}}AdhocQueryRequest",
    f"{{{QUERY}}}AdhocQueryResponse",
    f"{{{RS}}}RegistryResponse",
    f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest",
    f"{{{XDSB}}}RetrieveDocumentSetRequest",
    f"{{{XDSB}}}RetrieveDocumentSetResponse",
    f"{{{XDSI}}}RetrieveImagingDocumentSetRequest",
}

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True)


def _validator(schema_folder: Path) -> etree.XMLSchema:
    """One XMLSchema covering every message namespace, importing the documents of ``schema_folder``."""
    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{(schema_folder / doc).as_uri()}"/>'
        for ns, doc in SCHEMA_DOCUMENTS.items()
    )
    driver = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    return etree.XMLSchema(etree.fromstring(driver.encode()))


@functools.cache
def ours() -> etree.XMLSchema:
    return _validator(OURS / "xsd")


@functools.cache
def official() -> etree.XMLSchema:
    return _validator(OFFICIAL / "schema")


@dataclass(frozen=True)
class Sample:
    source: str  # path under the testkit, with "#n" for the n-th message of a test plan
    xml: bytes

    @property
    def root(self) -> etree._Element:
        return etree.fromstring(self.xml, PARSER)


def _message_roots(tree: etree._ElementTree) -> Iterator[etree._Element]:
    """Message elements not nested in another message element (test plans embed several)."""
    for element in tree.iter(tuple(MESSAGE_ELEMENTS)):
        parent = element.getparent()
        inside_message = False
        while parent is not None:
            if parent.tag in MESSAGE_ELEMENTS:
                inside_message = True
                break
            parent = parent.getparent()
        if not inside_message:
            yield element


@functools.cache
def nist_samples() -> tuple[Sample, ...]:
    """Every ebRIM 3.0 / IHE message body in the NIST testkit, in a stable order."""
    found = []
    for path in sorted(NIST_TESTKIT.rglob("*.xml")):
        try:
            tree = etree.parse(str(path), PARSER)
        except etree.XMLSyntaxError:
            continue  # a few 2.1-era files are not well-formed; they are not 3.0 messages anyway
        name = str(path.relative_to(NIST_TESTKIT))
        if path.name == "testplan.xml":
            for n, element in enumerate(_message_roots(tree)):
                found.append(Sample(f"{name}#{n}", etree.tostring(copy.deepcopy(element))))
        elif tree.getroot().tag in MESSAGE_ELEMENTS:
            found.append(Sample(name, etree.tostring(tree.getroot())))
        else:
            for body in tree.iter("{http://www.w3.org/2003/05/soap-envelope}Body"):
                for n, element in enumerate(e for e in body if e.tag in MESSAGE_ELEMENTS):
                    found.append(Sample(f"{name}#{n}", etree.tostring(copy.deepcopy(element))))
    return tuple(found)
