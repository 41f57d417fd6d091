"""The affinity domain's vocabulary, loaded from the NIST XDS Toolkit ``codes.xml`` format.

That file holds one ``<CodeType name=... classScheme=...>`` per coded attribute (classCode,
typeCode, formatCode, eventCodeList, ...), each listing ``<Code code= display= codingScheme=/>``;
a ``mimeType`` CodeType without classScheme lists accepted MIME types; ``<AssigningAuthority
id="&OID&ISO">`` entries name the patient id domains. The registry checks every submitted code
against it (ITI TF-3 4.2.3.1.2: codes come from the affinity domain's value sets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from xds.metadata import model as m
from xds.metadata.datatypes import HD

# CodeType names of codes.xml, and the classification scheme each one belongs to.
CODE_TYPE_SCHEMES = {
    "classCode": m.DE_CLASS_CODE,
    "confidentialityCode": m.DE_CONFIDENTIALITY_CODE,
    "eventCodeList": m.DE_EVENT_CODE,
    "formatCode": m.DE_FORMAT_CODE,
    "healthcareFacilityTypeCode": m.DE_HEALTHCARE_FACILITY_TYPE_CODE,
    "practiceSettingCode": m.DE_PRACTICE_SETTING_CODE,
    "typeCode": m.DE_TYPE_CODE,
    "contentTypeCode": m.SS_CONTENT_TYPE_CODE,
    "folderCodeList": m.FOL_CODE_LIST,
    "associationDocumentation": m.ASSOCIATION_DOCUMENTATION,
}


@dataclass(frozen=True)
class CodeType:
    """One coded attribute's value set: the allowed (code, codingScheme) pairs and their display names."""

    name: str
    class_scheme: str | None
    codes: frozenset[tuple[str, str]] = frozenset()
    display_names: dict[tuple[str, str], str] = field(default_factory=dict, compare=False)

    def __contains__(self, code: object) -> bool:
        if isinstance(code, m.Code):
            return (code.code, code.scheme) in self.codes
        return code in self.codes


@dataclass
class CodeList:
    types: dict[str, CodeType] = field(default_factory=dict)
    mime_types: frozenset[str] | None = None
    assigning_authorities: list[str] = field(default_factory=list)  # OIDs

    def __post_init__(self) -> None:
        self._by_scheme = {t.class_scheme: t for t in self.types.values() if t.class_scheme}

    def for_scheme(self, class_scheme: str) -> CodeType | None:
        return self._by_scheme.get(class_scheme)

    def allows(self, class_scheme: str, code: m.Code) -> bool:
        """Whether ``code`` is in the value set of ``class_scheme``; True when the list has no
        value set for that attribute (nothing configured, nothing to enforce)."""
        t = self._by_scheme.get(class_scheme)
        return t is None or code in t

    def allows_mime_type(self, mime_type: str) -> bool:
        return self.mime_types is None or mime_type in self.mime_types


def parse_codes(data: bytes | etree._Element) -> CodeList:
    root = data if isinstance(data, etree._Element) else etree.fromstring(data, _PARSER)
    types: dict[str, CodeType] = {}
    mime_types: set[str] | None = None
    authorities: list[str] = []
    for el in root:
        if not isinstance(el.tag, str):
            continue
        tag = etree.QName(el).localname
        if tag == "CodeType":
            name = el.get("name", "")
            if name == "mimeType":
                mime_types = (mime_types or set()) | {c.get("code", "") for c in el.iter("{*}Code")}
                continue
            pairs: dict[tuple[str, str], str] = {}
            for c in el.iter("{*}Code"):
                pairs[(c.get("code", ""), c.get("codingScheme", ""))] = c.get("display", "")
            scheme = el.get("classScheme") or CODE_TYPE_SCHEMES.get(name)
            types[name] = CodeType(name, scheme, frozenset(pairs), pairs)
        elif tag == "AssigningAuthority":
            oid = HD.parse(el.get("id", "")).universal_id
            if oid:
                authorities.append(oid)
    return CodeList(types, frozenset(mime_types) if mime_types is not None else None, authorities)


def load_codes(path: str | Path) -> CodeList:
    return parse_codes(Path(path).read_bytes())


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)
