"""Value formats of XDS metadata: the HL7 v2 datatypes as XDS constrains them (ITI TF-3 4.2.3.1.7,
Table 4.2.3.1.7-2: CX, CXi, HD, XCN, XON, XTN, DTM) and the identifier forms (OID, UUID URN,
DocumentEntry.uniqueId).

The ``*_problems`` functions return what is wrong with a value as short phrases (an empty list
means valid); :mod:`xds.metadata.rules` turns them into coded errors. HL7 escape sequences are not
decoded: XDS values are compared as encoded.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

COMPONENT = "^"
SUBCOMPONENT = "&"
REPETITION = "~"

# --- identifiers ---------------------------------------------------------------------------------

_OID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
_UUID_URN = re.compile(
    r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

OID_MAX_LENGTH = 64  # uniqueId, sourceId, repositoryUniqueId (ITI TF-3 4.2.3.2.26, 4.2.3.3.9)
UNIQUE_ID_MAX_LENGTH = 128  # DocumentEntry.uniqueId in root^extension form
EXTENSION_MAX_LENGTH = 16


def is_oid(value: str, *, max_length: int | None = OID_MAX_LENGTH) -> bool:
    """Dotted-decimal OID without leading zeros in any arc, at most ``max_length`` characters."""
    if max_length is not None and len(value) > max_length:
        return False
    return _OID.fullmatch(value) is not None


def is_uuid_urn(value: str) -> bool:
    """``urn:uuid:`` followed by a UUID in its 8-4-4-4-12 hexadecimal form."""
    return _UUID_URN.fullmatch(value) is not None


def is_home_community_id(value: str) -> bool:
    """homeCommunityId: ``urn:oid:`` and an OID (ITI TF-3 4.2.3.2.12)."""
    return value.startswith("urn:oid:") and is_oid(value[8:])


def is_document_unique_id(value: str) -> bool:
    """DocumentEntry.uniqueId (ITI TF-3 4.2.3.2.26): an OID, or ``root^extension`` with an OID
    root, an extension of at most 16 characters, at most 128 characters in all."""
    if "^" not in value:
        return is_oid(value)
    root, _, ext = value.partition("^")
    return (
        len(value) <= UNIQUE_ID_MAX_LENGTH
        and is_oid(root)
        and 0 < len(ext) <= EXTENSION_MAX_LENGTH
        and "^" not in ext
        and not any(c.isspace() for c in ext)
    )


_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MIME = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(\"[^\"]*\"|{_TOKEN}))*")
_PID_FIELD = re.compile(r"PID-([1-9][0-9]?)\|(.*)", re.S)


def is_sha1_hex(value: str) -> bool:
    """DocumentEntry.hash: SHA-1 as 40 hexadecimal digits (ITI TF-3 4.2.3.2.11)."""
    return _SHA1.fullmatch(value) is not None


def is_language_code(value: str) -> bool:
    """RFC 3066 / BCP 47 language tag shape (ITI TF-3 4.2.3.2.13)."""
    return _LANGUAGE.fullmatch(value) is not None


def is_mime_type(value: str) -> bool:
    return _MIME.fullmatch(value) is not None


def source_patient_info_problems(value: str) -> list[str]:
    """One sourcePatientInfo value: ``PID-n|field`` (ITI TF-3 4.2.3.2.24)."""
    m = _PID_FIELD.fullmatch(value)
    if m is None:
        return ["is not of the form PID-n|value"]
    return []


# --- DTM (ITI TF-3 4.2.3.1.7: YYYY[MM[DD[hh[mm[ss]]]]], UTC, no zone offset) ---------------------

_DTM = re.compile(r"[0-9]{4}(?:[0-9]{2}){0,5}")
DTM_PRECISIONS = (4, 6, 8, 10, 12, 14)


def is_dtm(value: str) -> bool:
    """A valid XDS DTM at any of its precisions (year to second), with real calendar values."""
    if _DTM.fullmatch(value) is None:
        return False
    year = int(value[0:4])
    if len(value) >= 6:
        month = int(value[4:6])
        if not 1 <= month <= 12:
            return False
        if len(value) >= 8:
            day = int(value[6:8])
            if not 1 <= day <= calendar.monthrange(year, month)[1]:
                return False
    if len(value) >= 10 and int(value[8:10]) > 23:
        return False
    if len(value) >= 12 and int(value[10:12]) > 59:
        return False
    if len(value) >= 14 and int(value[12:14]) > 59:
        return False
    return True


def _require_dtm(value: str) -> None:
    if not is_dtm(value):
        raise ValueError(f"not an XDS DTM: {value!r}")


def dtm_lower_bound(value: str) -> str:
    """The first second a DTM covers, as 14 digits: ``"2004"`` -> ``"20040101000000"``.

    Normalised strings sort chronologically, so stored times and query bounds of any precision
    compare as plain strings."""
    _require_dtm(value)
    return value + "0101000000"[len(value) - 4 :]


def dtm_upper_bound(value: str) -> str:
    """The last second a DTM covers: ``"2004"`` -> ``"20041231235959"``,
    ``"200402"`` -> ``"20040229235959"``."""
    _require_dtm(value)
    out = value
    if len(out) == 4:
        out += "12"
    if len(out) == 6:
        out += f"{calendar.monthrange(int(out[:4]), int(out[4:6]))[1]:02d}"
    return out + "235959"[len(out) - 8 :]


def dtm_range(value: str) -> tuple[str, str]:
    """(lower, upper) bounds of the interval a DTM denotes."""
    return dtm_lower_bound(value), dtm_upper_bound(value)


# --- HL7 v2 composite types ------------------------------------------------------------------------


def _split(value: str, sep: str) -> list[str]:
    return value.split(sep)


def _get(parts: list[str], index: int) -> str:
    return parts[index] if index < len(parts) else ""


def _join(parts: list[str], sep: str) -> str:
    while parts and not parts[-1]:
        parts = parts[:-1]
    return sep.join(parts)


@dataclass(frozen=True)
class HD:
    """Hierarchic designator: namespace ID & universal ID & universal ID type."""

    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    @classmethod
    def parse(cls, value: str, separator: str = SUBCOMPONENT) -> HD:
        p = _split(value, separator)
        return cls(_get(p, 0), _get(p, 1), _get(p, 2))

    def encode(self, separator: str = SUBCOMPONENT) -> str:
        return _join([self.namespace_id, self.universal_id, self.universal_id_type], separator)

    def __str__(self) -> str:
        return self.encode()

    @property
    def is_iso_oid(self) -> bool:
        return self.universal_id_type == "ISO" and is_oid(self.universal_id)


def hd_problems(hd: HD, *, allow_namespace: bool = False, where: str = "assigning authority") -> list[str]:
    """An assigning authority as XDS wants it: ``&OID&ISO`` (namespace only if allowed)."""
    out = []
    if hd.namespace_id and not allow_namespace:
        out.append(f"{where} has a namespace ID; only &OID&ISO is allowed")
    if not hd.universal_id:
        out.append(f"{where} has no universal ID")
    elif not is_oid(hd.universal_id):
        out.append(f"{where} universal ID {hd.universal_id!r} is not an OID")
    if hd.universal_id_type != "ISO":
        out.append(f"{where} universal ID type is {hd.universal_id_type!r}, not ISO")
    return out


@dataclass(frozen=True)
class CX:
    """Extended composite ID. XDS patient ids use CX.1 and CX.4 only: ``id^^^&OID&ISO``."""

    id_number: str
    assigning_authority: HD
    identifier_type_code: str = ""
    components: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CX:
        p = _split(value, COMPONENT)
        return cls(_get(p, 0), HD.parse(_get(p, 3)), _get(p, 4), tuple(p))

    @classmethod
    def of(cls, id_number: str, oid: str) -> CX:
        return cls.parse(f"{id_number}^^^&{oid}&ISO")

    def __str__(self) -> str:
        return _join(list(self.components), COMPONENT)


def cx_problems(value: str, *, assigning_authority: str | None = None) -> list[str]:
    """What makes ``value`` unacceptable as an XDS patient id (Table 4.2.3.1.7-2, CX):
    an ID number, an ``&OID&ISO`` assigning authority, nothing else. With ``assigning_authority``
    the OID must also be that one (the affinity domain's)."""
    if not value:
        return ["is empty"]
    if REPETITION in value:
        return ["repeats (contains ~)"]
    p = _split(value, COMPONENT)
    out = []
    if not p[0]:
        out.append("has no ID number (CX.1)")
    if any(_get(p, i) for i in (1, 2)) or any(p[4:]):
        out.append("has components other than CX.1 and CX.4")
    if not _get(p, 3):
        out.append("has no assigning authority (CX.4)")
    else:
        hd = HD.parse(p[3])
        out.extend(hd_problems(hd, where="CX.4"))
        if assigning_authority and hd.universal_id != assigning_authority:
            out.append(f"is not issued by assigning authority {assigning_authority}")
    return out


def cxi_problems(value: str) -> list[str]:
    """A referenceIdList value (Table 4.2.3.1.7-2, CXi): CX.1 id, CX.5 reference type required;
    CX.4 (namespace or &OID&ISO) and CX.6 (assigning facility / homeCommunityId) optional."""
    if not value:
        return ["is empty"]
    p = _split(value, COMPONENT)
    out = []
    if not p[0]:
        out.append("has no ID number (CX.1)")
    if any(_get(p, i) for i in (1, 2)) or any(p[6:]):
        out.append("has components other than CX.1, CX.4, CX.5, CX.6")
    if not _get(p, 4):
        out.append("has no identifier type code (CX.5)")
    aa = _get(p, 3)
    if aa:
        hd = HD.parse(aa)
        if not hd.namespace_id and not (hd.universal_id and hd.universal_id_type):
            out.append("CX.4 has neither a namespace ID nor a universal ID and type")
        elif hd.universal_id and not hd.is_iso_oid:
            out.append("CX.4 universal ID is not an ISO OID")
    return out


@dataclass(frozen=True)
class XCN:
    """Extended composite ID and name for persons: id^family^given^middle^suffix^prefix^^^AA."""

    id_number: str = ""
    family_name: str = ""
    given_name: str = ""
    assigning_authority: HD = HD()

    @classmethod
    def parse(cls, value: str) -> XCN:
        p = _split(value, COMPONENT)
        family = _get(p, 1).split(SUBCOMPONENT)[0]
        return cls(_get(p, 0), family, _get(p, 2), HD.parse(_get(p, 8)))


def xcn_problems(value: str) -> list[str]:
    """authorPerson, legalAuthenticator (Table 4.2.3.1.7-2, XCN): an ID number or a family name;
    an assigning authority only together with an ID number, and then an ISO OID."""
    if not value:
        return ["is empty"]
    p = _split(value, COMPONENT)
    if len(p) > 23:
        return ["has more than 23 components"]
    x = XCN.parse(value)
    out = []
    if not x.id_number and not x.family_name:
        out.append("has neither an ID number (XCN.1) nor a family name (XCN.2)")
    if _get(p, 8):
        if not x.id_number:
            out.append("has an assigning authority (XCN.9) but no ID number")
        out.extend(hd_problems(x.assigning_authority, allow_namespace=True, where="XCN.9"))
    return out


@dataclass(frozen=True)
class XON:
    """Extended composite name and ID for organisations: name^^^^^AA^^^^identifier."""

    name: str = ""
    assigning_authority: HD = HD()
    identifier: str = ""

    @classmethod
    def parse(cls, value: str) -> XON:
        p = _split(value, COMPONENT)
        return cls(_get(p, 0), HD.parse(_get(p, 5)), _get(p, 9))


def xon_problems(value: str) -> list[str]:
    """authorInstitution (Table 4.2.3.1.7-2, XON): XON.1 name required; only XON.6 (ISO assigning
    authority) and XON.10 (identifier) besides; XON.10 without XON.6 must be an OID."""
    if not value:
        return ["is empty"]
    p = _split(value, COMPONENT)
    out = []
    if len(p) > 10:
        out.append("has more than 10 components")
    if not p[0]:
        out.append("has no organization name (XON.1)")
    if any(_get(p, i) for i in (1, 2, 3, 4, 6, 7, 8)):
        out.append("has components other than XON.1, XON.6 and XON.10")
    x = XON.parse(value)
    if _get(p, 5):
        out.extend(hd_problems(x.assigning_authority, where="XON.6"))
    elif x.identifier and not is_oid(x.identifier):
        out.append("XON.10 is not an OID and there is no assigning authority (XON.6)")
    return out


@dataclass(frozen=True)
class XTN:
    """Extended telecommunication number: ^use^equipment^email^country^area^local^ext^...^unformatted."""

    use_code: str = ""
    equipment_type: str = ""
    email: str = ""
    country_code: str = ""
    area_code: str = ""
    local_number: str = ""
    extension: str = ""
    unformatted: str = ""

    @classmethod
    def parse(cls, value: str) -> XTN:
        p = _split(value, COMPONENT)
        return cls(
            _get(p, 1), _get(p, 2), _get(p, 3), _get(p, 4), _get(p, 5), _get(p, 6), _get(p, 7), _get(p, 11)
        )


def xtn_problems(value: str) -> list[str]:
    """authorTelecommunication, intendedRecipient telecom (Table 4.2.3.1.7-2, XTN): XTN.3 required;
    ``Internet`` needs XTN.4 (email) and no number parts; telephone types need XTN.7 or XTN.12."""
    if not value:
        return ["is empty"]
    x = XTN.parse(value)
    if not x.equipment_type:
        return ["has no telecommunication equipment type (XTN.3)"]
    if x.equipment_type in ("Internet", "X.400"):
        out = [] if x.email else ["has equipment type Internet but no address (XTN.4)"]
        if any((x.country_code, x.area_code, x.local_number, x.extension, x.unformatted)):
            out.append("mixes an Internet address with telephone number parts")
        return out
    if not (x.local_number or x.unformatted):
        return ["has neither a local number (XTN.7) nor an unformatted number (XTN.12)"]
    if x.email:
        return ["mixes a telephone number with an Internet address (XTN.4)"]
    return []


def intended_recipient_problems(value: str) -> list[str]:
    """SubmissionSet.intendedRecipient (ITI TF-3 4.2.3.3.5): ``XON|XCN|XTN``, at least one part."""
    parts = value.split("|")
    if len(parts) > 3 or not any(parts):
        return ["is not of the form organization|person|telecommunication"]
    out = []
    if parts[0]:
        out += [f"organization {p}" for p in xon_problems(parts[0])]
    if len(parts) > 1 and parts[1]:
        out += [f"person {p}" for p in xcn_problems(parts[1])]
    if len(parts) > 2 and parts[2]:
        out += [f"telecommunication {p}" for p in xtn_problems(parts[2])]
    return out
