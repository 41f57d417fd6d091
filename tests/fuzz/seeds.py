"""Seed inputs for the fuzz suite: real messages from the shared conformance corpus.

Everything is read from ``../shared/corpus`` (see its INDEX.md): the NIST XDS toolkit's ebRIM 3.0
submissions and AdhocQueryRequests, its MTOM/XOP wire captures (PnrXop), the RAD-69/RAD-75 and
ITI-43 request bodies, the HL7 v2 samples of dcm4che, IPF and NIST, and the DICOM KOS manifests and
images of the NIST toolkit. Run-time placeholders of the testkit (``$patientid$``, ``$uuid$``...)
are replaced by fixed values, so the seeds (and hence a derandomized run) are the same every time.

The patient data the seeds carry (:data:`PHI`) is what the suite looks for in faults and logs.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import pytest
from lxml import etree

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
TESTKIT = CORPUS / "nist-testkit"
HL7_DIR = CORPUS / "hl7"
DICOM_DIR = CORPUS / "dicom"

needs_corpus = pytest.mark.skipif(not TESTKIT.is_dir(), reason=f"no conformance corpus at {CORPUS}")

# The affinity domain of the node under test: the NIST testkit's patient assigning authority.
AUTHORITY = "1.3.6.1.4.1.21367.2005.13.20.1000"
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"
REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.216"
IMAGING_ID = "1.3.6.1.4.1.21367.13.71.101"
# The patient every seed submission is about (fed over ITI-8 before fuzzing).
PATIENT_NUMBER = "FUZZ7301"
PATIENT = f"{PATIENT_NUMBER}^^^&{AUTHORITY}&ISO"
# The patient of the HL7 seeds: another one, so that a fuzzed merge (A40) or change of identifier
# (A47), a legitimate change, never touches the sentinel's patient.
HL7_PATIENT_NUMBER = "FUZZ8802"

RIM3 = b"urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"

MTOM_CAPTURES = ("PnrXop/Xop", "PnrXop/NoXop", "PnrXop/encodedURL", "PnrXop/dicom", "PnrNoXop/submit")

# Patient data in the seeds, looked for in faults and log records: ids, names, birth dates,
# addresses. Values of the HL7 samples are added by :func:`hl7_phi`.
PHI = (
    PATIENT_NUMBER,
    "SR7^^^",
    "IDS-AD027-a",
    "IDCAD0",
    "pid1^^^",
    "Doe^John",
    "19560527",
    "100 Main St",
    "Metropolis",
)


def _stable_oid(*parts: str) -> str:
    digest = int(hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12], 16)
    return f"1.3.6.1.4.1.21367.2005.3.7301.{digest}"


def _stable_uuid(*parts: str) -> str:
    h = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


_PATIENT_PLACEHOLDERS = {"$patientid$", "$patient_id$", "$pid$"}
_REPOSITORY_PLACEHOLDERS = {"$repuid$", "$repositoryuid$", "$repositoryUniqueId$", "$testdata_repid$",
                            "$repid_request$", "$repid_response$"}
_HOME_PLACEHOLDERS = {"$home$", "$testdata_home$", "$home_request$", "$home_response$"}
_UUID_PLACEHOLDERS = {"$uuid$", "$rplc_doc_uuid$", "$xfrm_doc_uuid$", "$Folder$", "$Association$",
                      "$APNDAssociation$", "$XFRM_RPLCAssociation$", "$deid$"}


def fill_placeholders(text: str, where: str) -> str:
    """The testkit's ``$name$`` placeholders replaced by fixed, plausible values."""

    def value(match: re.Match[str]) -> str:
        name = match.group(0)
        if name in _PATIENT_PLACEHOLDERS:
            return PATIENT.replace("&", "&amp;")
        if name in _REPOSITORY_PLACEHOLDERS:
            return REPOSITORY_ID
        if name in _HOME_PLACEHOLDERS:
            return HOME
        if name in _UUID_PLACEHOLDERS:
            return _stable_uuid(where, name)
        if name.startswith("$mime"):
            return "text/plain"
        return _stable_oid(where, name)

    return re.sub(r"\$[A-Za-z_0-9]+\$", value, text)


def _read_xml_seed(path: Path) -> bytes | None:
    raw = path.read_bytes()
    if RIM3 not in raw:
        return None
    text = fill_placeholders(raw.decode("utf-8", errors="replace"), str(path.relative_to(TESTKIT)))
    data = text.encode()
    try:
        etree.fromstring(data)
    except etree.XMLSyntaxError:
        return None
    return data


@functools.cache
def _testkit_xml() -> dict[str, list[bytes]]:
    """ebRIM 3.0 seeds of the testkit by root element local name."""
    out: dict[str, list[bytes]] = {}
    if not TESTKIT.is_dir():
        return out
    for path in sorted(TESTKIT.rglob("*.xml")):
        if path.name == "testplan.xml":
            continue
        data = _read_xml_seed(path)
        if data is None:
            continue
        out.setdefault(etree.QName(etree.fromstring(data)).localname, []).append(data)
    return out


def submissions() -> list[bytes]:
    """lcm:SubmitObjectsRequest seeds (ITI-42 bodies, RAD-68 metadata)."""
    return _testkit_xml().get("SubmitObjectsRequest", [])


def provide_and_register_bodies() -> list[bytes]:
    """xdsb:ProvideAndRegisterDocumentSetRequest seeds (documents inline)."""
    return _testkit_xml().get("ProvideAndRegisterDocumentSetRequest", [])


def queries() -> list[bytes]:
    """query:AdhocQueryRequest seeds (ITI-18 / ITI-38 bodies)."""
    return _testkit_xml().get("AdhocQueryRequest", [])


@functools.cache
def retrieve_requests() -> list[bytes]:
    """ITI-43 / ITI-39 / RAD-69 / RAD-75 request bodies."""
    out = []
    for path in sorted(TESTKIT.rglob("*.xml")) if TESTKIT.is_dir() else []:
        raw = path.read_bytes()
        if b"RetrieveDocumentSetRequest" not in raw and b"RetrieveImagingDocumentSetRequest" not in raw:
            continue
        data = fill_placeholders(raw.decode("utf-8", errors="replace"), str(path.relative_to(TESTKIT))).encode()
        try:
            root = etree.fromstring(data)
        except etree.XMLSyntaxError:
            continue
        if etree.QName(root).localname.startswith("Retrieve"):
            out.append(data)
    return out


def _http_content_type(testplan: Path) -> str:
    headers = etree.parse(str(testplan)).findtext(".//HttpTransaction/Headers") or ""
    m = re.search(r"^\s*Content-Type:\s*(.+?)\s*$", headers, re.I | re.M)
    return m.group(1) if m else ""


def with_our_patient(body: bytes) -> bytes:
    """A capture with its hard-coded patient ids replaced by the node's fed patient."""
    ours = PATIENT.replace("&", "&amp;").encode()
    body = re.sub(rb"SR7\^\^\^&amp;1\.2\.260&amp;ISO", ours, body)
    return re.sub(rb"IDS-AD027-a\^\^\^&amp;" + re.escape(AUTHORITY.encode()) + rb"&amp;ISO", ours, body)


@functools.cache
def mtom_captures() -> list[tuple[bytes, str]]:
    """(body, Content-Type) of the testkit's MTOM wire captures of ITI-41 / RAD-68."""
    out = []
    for name in MTOM_CAPTURES:
        d = TESTKIT / name
        if (d / "body.txt").is_file():
            out.append((with_our_patient((d / "body.txt").read_bytes()), _http_content_type(d / "testplan.xml")))
    return out


# --- HL7 v2 ---------------------------------------------------------------------------------------


@functools.cache
def hl7_messages() -> list[bytes]:
    """The HL7 v2 samples, segments ended by CR as on the wire; NIST templates filled in."""
    out = []
    if not HL7_DIR.is_dir():
        return out
    for path in sorted(HL7_DIR.rglob("*")):
        if path.suffix not in (".hl7", ".txt") or not path.is_file() or "LICENSE" in path.name:
            continue
        text = path.read_bytes().decode("latin-1")
        text = text.replace("$pid$", f"{HL7_PATIENT_NUMBER}^^^&{AUTHORITY}&ISO")
        text = re.sub(r"\$[A-Za-z0-9_]+\$", "X", text)
        lines = [line for line in re.split(r"\r\n|\n|\r", text) if line.strip()]
        if lines and lines[0].startswith("MSH"):
            out.append(("\r".join(lines) + "\r").encode("latin-1"))
    # An ITI-8 admit in the affinity domain and an ITI-9 PIX query, so mutations reach the
    # accepting paths too (the corpus messages are mostly of other domains).
    out.append(
        (
            "MSH|^~\\&|FUZZPAS|FUZZHOSP|XDSREG|DIR|20240102030405||ADT^A01^ADT_A01|FUZZ0001|P|2.5\r"
            "EVN|A01|20240102030405\r"
            f"PID|1||{HL7_PATIENT_NUMBER}^^^&{AUTHORITY}&ISO~LOC55^^^HOSP&1.2.3.4.5&ISO||Fuzzer^Faye^Q||19610203|F|||"
            "12 Quarry Road^^Kingston^ON^K7L3N6^CAN||(613)555-0199\r"
            "PV1|1|O\r"
        ).encode()
    )
    out.append(
        (
            "MSH|^~\\&|FUZZPIX|FUZZHOSP|XDSREG|DIR|20240102030405||QBP^Q23^QBP_Q21|FUZZ0002|P|2.5\r"
            f"QPD|IHE PIX Query|Q0001|{HL7_PATIENT_NUMBER}^^^&{AUTHORITY}&ISO|^^^HOSP&1.2.3.4.5&ISO\r"
            "RCP|I\r"
        ).encode()
    )
    return out


def hl7_phi(message: bytes) -> set[str]:
    """Patient data of an HL7 message: PID-3 id numbers, PID-5 names, PID-7, PID-11 street."""
    out: set[str] = set()
    for seg in re.split(rb"\r\n|\n|\r", message):
        if not seg.startswith(b"PID|"):
            continue
        fields = seg.decode("latin-1").split("|") + [""] * 12
        for rep in fields[3].split("~"):
            out.add(rep.split("^")[0])
        for name in fields[5].split("^")[:2]:
            out.add(name)
        out.add(fields[7])
        out.add(fields[11].split("^")[0])
    return {v for v in out if len(v) >= 5 and v != '""'}


# --- DICOM -----------------------------------------------------------------------------------------


@functools.cache
def dicom_files() -> list[Path]:
    """KOS manifests and a few images of the NIST toolkit (distinct contents)."""
    seen: set[str] = set()
    out = []
    for path in sorted(DICOM_DIR.rglob("*.dcm")) if DICOM_DIR.is_dir() else []:
        h = hashlib.sha1(path.read_bytes()).hexdigest()
        if h not in seen:
            seen.add(h)
            out.append(path)
    return out


def kos_files() -> list[Path]:
    return [p for p in dicom_files() if "kos" in p.name.lower()]


def image_files() -> list[Path]:
    return [p for p in dicom_files() if "kos" not in p.name.lower()]
