"""ebRIM 3.0 <-> the typed model (ITI TF-3 4.2: how XDS objects and attributes are coded in ebRIM).

Parsing is tolerant and never raises on content: what cannot be mapped is recorded as a coded
error (:class:`xds.metadata.rules.Rule`) on the result, so that one response can list every problem.
Serialisation produces the canonical form the registry stores per object and concatenates into
LeafClass query answers: a fixed element and attribute order, the ``rim:`` prefix, and ids for
Classifications and ExternalIdentifiers derived from the owning object's id (fresh UUIDs, never
the submitter's, and the same ones every time the object is serialised).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from xds.metadata import model as m
from xds.metadata.errors import RegistryError
from xds.metadata.rules import Rule
from xds.namespaces import LCM, QUERY, RIM, XDSB

OT_CLASSIFICATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
OT_EXTERNAL_IDENTIFIER = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
OT_REGISTRY_PACKAGE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
OT_ASSOCIATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"

SLOT_REFERENCE_ID_LIST = "urn:ihe:iti:xds:2013:referenceIdList"
SLOT_SUBMISSION_SET_STATUS = "SubmissionSetStatus"
MAX_SLOT_VALUE = 256  # ebRIM LongName

NSMAP = {"rim": RIM}


def _q(local: str) -> str:
    return f"{{{RIM}}}{local}"


# --- parsing ---------------------------------------------------------------------------------------


@dataclass
class ParsedObjects:
    """The content of a rim:RegistryObjectList, in document order."""

    objects: list[m.RegistryObject] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)
    errors: list[RegistryError] = field(default_factory=list)


@dataclass
class _Raw:
    kind: str  # ExtrinsicObject | RegistryPackage | Association
    element: etree._Element
    id: str
    slots: list[tuple[str, list[str]]]
    title: str | None
    comments: str | None
    version_name: str | None
    classifications: list[etree._Element]
    external_identifiers: list[etree._Element]


def _localized(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    ls = el.find(_q("LocalizedString"))
    return None if ls is None else ls.get("value", "")


def _slot_list(el: etree._Element) -> list[tuple[str, list[str]]]:
    out = []
    for s in el.iterchildren(_q("Slot")):
        values = [(v.text or "").strip() for v in s.iterfind(f"{_q('ValueList')}/{_q('Value')}")]
        out.append((s.get("name", ""), values))
    return out


_LABEL = {
    "ExtrinsicObject": "DocumentEntry",
    "RegistryPackage": "RegistryPackage",
    "Association": "Association",
}


class _Parser:
    def __init__(self) -> None:
        self.errors: list[RegistryError] = []

    def err(self, rule: Rule, location: str = "", **fields: object) -> None:
        self.errors.append(rule.error(location=location, **fields))

    # -- the list --

    def object_list(self, rol: etree._Element) -> ParsedObjects:
        raws: list[_Raw] = []
        loose_classifications: list[etree._Element] = []
        loose_identifiers: list[etree._Element] = []
        refs: list[str] = []
        for child in rol:
            if not isinstance(child.tag, str):
                continue
            qn = etree.QName(child)
            if qn.namespace != RIM:
                self.err(Rule.NOT_EBRIM_3, element=child.tag)
                continue
            name = qn.localname
            if name in _LABEL:
                raw = self.raw(child, name)
                if raw is not None:
                    raws.append(raw)
            elif name == "Classification":
                loose_classifications.append(child)
            elif name == "ExternalIdentifier":
                loose_identifiers.append(child)
            elif name == "ObjectRef":
                if child.get("id"):
                    refs.append(child.get("id", ""))
                else:
                    self.err(Rule.MISSING_ID, element="ObjectRef")
            else:
                self.err(Rule.UNEXPECTED_ELEMENT, element=name)

        by_id = {r.id: r for r in raws}
        for c in loose_classifications:
            target = c.get("classifiedObject", "")
            if target in by_id:
                by_id[target].classifications.append(c)
            else:
                self.err(Rule.CLASSIFIED_OBJECT_UNKNOWN, c.get("id", ""), id=c.get("id", ""), target=target)
        for x in loose_identifiers:
            target = x.get("registryObject", "")
            if target in by_id:
                by_id[target].external_identifiers.append(x)
            else:
                self.err(Rule.IDENTIFIED_OBJECT_UNKNOWN, x.get("id", ""), id=x.get("id", ""), target=target)

        out = ParsedObjects(object_refs=refs)
        for r in raws:
            obj = self.object(r)
            if obj is not None:
                out.objects.append(obj)
        out.errors = self.errors
        return out

    def raw(self, el: etree._Element, kind: str) -> _Raw | None:
        id_ = el.get("id", "")
        if not id_:
            self.err(Rule.MISSING_ID, element=kind)
            return None
        classifications = list(el.iterchildren(_q("Classification")))
        for c in classifications:
            target = c.get("classifiedObject")
            if target and target != id_:
                self.err(Rule.CLASSIFIED_OBJECT_MISMATCH, id_, id=c.get("id", ""), parent=id_, target=target)
        vi = el.find(_q("VersionInfo"))
        slots = _slot_list(el)
        for name, values in slots:
            if any(len(v) > MAX_SLOT_VALUE for v in values):
                self.err(Rule.SLOT_VALUE_TOO_LONG, id_, object=_LABEL[kind], id=id_, name=name)
        return _Raw(
            kind=kind,
            element=el,
            id=id_,
            slots=slots,
            title=_localized(el.find(_q("Name"))),
            comments=_localized(el.find(_q("Description"))),
            version_name=None if vi is None else vi.get("versionName"),
            classifications=classifications,
            external_identifiers=list(el.iterchildren(_q("ExternalIdentifier"))),
        )

    def object(self, r: _Raw) -> m.RegistryObject | None:
        if r.kind == "ExtrinsicObject":
            return self.document_entry(r)
        if r.kind == "Association":
            return self.association(r)
        nodes = {c.get("classificationNode") for c in r.classifications}
        is_ss = m.SUBMISSION_SET_CLASSIFICATION in nodes
        is_folder = m.FOLDER_CLASSIFICATION in nodes
        if is_ss and is_folder:
            self.err(Rule.PACKAGE_DOUBLY_CLASSIFIED, r.id, id=r.id)
            return None
        if is_ss:
            return self.submission_set(r)
        if is_folder:
            return self.folder(r)
        self.err(Rule.PACKAGE_UNCLASSIFIED, r.id, id=r.id)
        return None

    # -- shared pieces --

    def common(self, r: _Raw, obj: m.RegistryObject) -> None:
        el = r.element
        obj.entry_uuid = r.id
        obj.home_community_id = el.get("home")
        obj.status = el.get("status")
        obj.lid = el.get("lid")
        obj.version_name = r.version_name

    def grouped(self, r: _Raw) -> tuple[dict[str, list[etree._Element]], dict[str, list[etree._Element]]]:
        """Classifications by classificationScheme (codes, authors) and by classificationNode."""
        by_scheme: dict[str, list[etree._Element]] = {}
        by_node: dict[str, list[etree._Element]] = {}
        for c in r.classifications:
            node = c.get("classificationNode")
            if node:
                by_node.setdefault(node, []).append(c)
            else:
                by_scheme.setdefault(c.get("classificationScheme", ""), []).append(c)
        return by_scheme, by_node

    def single(self, r: _Raw, label: str, attribute: str, items: list) -> object | None:
        if len(items) > 1:
            self.err(
                Rule.ATTRIBUTE_NOT_SINGLE, r.id, object=label, id=r.id, attribute=attribute, count=len(items)
            )
        return items[0] if items else None

    def code(self, r: _Raw, c: etree._Element) -> m.Code:
        slots = dict(_slot_list(c))
        schemes = slots.get("codingScheme", [])
        if len(schemes) > 1:
            self.err(
                Rule.SLOT_NOT_SINGLE,
                r.id,
                object="Classification",
                id=c.get("id", ""),
                name="codingScheme",
                count=len(schemes),
            )
        return m.Code(
            c.get("nodeRepresentation", ""),
            schemes[0] if schemes else "",
            _localized(c.find(_q("Name"))) or "",
        )

    def author(self, r: _Raw, c: etree._Element) -> m.Author:
        slots = dict(_slot_list(c))
        persons = slots.get("authorPerson", [])
        if len(persons) > 1:
            self.err(
                Rule.SLOT_NOT_SINGLE,
                r.id,
                object="author of",
                id=r.id,
                name="authorPerson",
                count=len(persons),
            )
        return m.Author(
            person=persons[0] if persons else None,
            institutions=slots.get("authorInstitution", []),
            roles=slots.get("authorRole", []),
            specialties=slots.get("authorSpecialty", []),
            telecommunications=slots.get("authorTelecommunication", []),
        )

    def identifiers(self, r: _Raw, label: str, known: dict[str, str]) -> dict[str, str]:
        """identificationScheme -> value for the schemes in ``known`` (scheme -> attribute name)."""
        found: dict[str, list[str]] = {}
        for x in r.external_identifiers:
            target = x.get("registryObject")
            if target and target != r.id:
                self.err(
                    Rule.IDENTIFIED_OBJECT_MISMATCH, r.id, id=x.get("id", ""), parent=r.id, target=target
                )
            scheme = x.get("identificationScheme", "")
            if scheme in known:
                found.setdefault(scheme, []).append(x.get("value", ""))
            else:
                self.err(Rule.UNKNOWN_EXTERNAL_IDENTIFIER, r.id, object=label, id=r.id, scheme=scheme)
        out = {}
        for scheme, values in found.items():
            out[scheme] = self.single(r, label, known[scheme], values) or ""
        return out

    def unknown_classifications(
        self, r: _Raw, label: str, groups: dict[str, list], known: Iterable[str]
    ) -> None:
        for scheme in groups.keys() - set(known):
            self.err(Rule.UNKNOWN_CLASSIFICATION, r.id, object=label, id=r.id, scheme=scheme)

    # -- the four object kinds --

    def document_entry(self, r: _Raw) -> m.DocumentEntry:
        label = "DocumentEntry"
        de = m.DocumentEntry()
        self.common(r, de)
        de.object_type = r.element.get("objectType", "")
        de.mime_type = r.element.get("mimeType", "")
        de.title, de.comments = r.title, r.comments
        s = _Slots(self, r, label)
        de.creation_time = s.single("creationTime")
        de.service_start_time = s.single("serviceStartTime")
        de.service_stop_time = s.single("serviceStopTime")
        de.hash = s.single("hash")
        size = s.single("size")
        if size is not None:
            if size.isdigit():
                de.size = int(size)
            else:
                self.err(Rule.INVALID_SIZE, r.id, object=label, id=r.id, value=size)
        de.language_code = s.single("languageCode")
        de.legal_authenticator = s.single("legalAuthenticator")
        de.source_patient_id = s.single("sourcePatientId")
        de.source_patient_info = s.multi("sourcePatientInfo")
        de.repository_unique_id = s.single("repositoryUniqueId")
        de.uri = s.uri()
        de.reference_ids = s.multi(SLOT_REFERENCE_ID_LIST)
        de.document_availability = s.single("documentAvailability")
        s.rest(de)

        by_scheme, by_node = self.grouped(r)
        de.limited_metadata = m.DE_LIMITED_METADATA in by_node
        de.authors = [self.author(r, c) for c in by_scheme.get(m.DE_AUTHOR, [])]
        singles = {
            m.DE_CLASS_CODE: ("classCode", "class_code"),
            m.DE_FORMAT_CODE: ("formatCode", "format_code"),
            m.DE_HEALTHCARE_FACILITY_TYPE_CODE: (
                "healthcareFacilityTypeCode",
                "healthcare_facility_type_code",
            ),
            m.DE_PRACTICE_SETTING_CODE: ("practiceSettingCode", "practice_setting_code"),
            m.DE_TYPE_CODE: ("typeCode", "type_code"),
        }
        for scheme, (attribute, name) in singles.items():
            c = self.single(r, label, attribute, by_scheme.get(scheme, []))
            if c is not None:
                setattr(de, name, self.code(r, c))
        de.confidentiality_codes = [self.code(r, c) for c in by_scheme.get(m.DE_CONFIDENTIALITY_CODE, [])]
        de.event_codes = [self.code(r, c) for c in by_scheme.get(m.DE_EVENT_CODE, [])]
        known = [*singles, m.DE_AUTHOR, m.DE_CONFIDENTIALITY_CODE, m.DE_EVENT_CODE]
        self.unknown_classifications(r, label, by_scheme, known)
        self.unknown_classifications(r, label, by_node, [m.DE_LIMITED_METADATA])

        ids = self.identifiers(r, label, {m.DE_PATIENT_ID: "patientId", m.DE_UNIQUE_ID: "uniqueId"})
        de.patient_id = ids.get(m.DE_PATIENT_ID, "")
        de.unique_id = ids.get(m.DE_UNIQUE_ID, "")
        return de

    def submission_set(self, r: _Raw) -> m.SubmissionSet:
        label = "SubmissionSet"
        ss = m.SubmissionSet()
        self.common(r, ss)
        ss.title, ss.comments = r.title, r.comments
        s = _Slots(self, r, label)
        ss.submission_time = s.single("submissionTime")
        ss.intended_recipients = s.multi("intendedRecipient")
        s.rest(ss)
        by_scheme, by_node = self.grouped(r)
        ss.limited_metadata = m.SS_LIMITED_METADATA in by_node
        ss.authors = [self.author(r, c) for c in by_scheme.get(m.SS_AUTHOR, [])]
        c = self.single(r, label, "contentTypeCode", by_scheme.get(m.SS_CONTENT_TYPE_CODE, []))
        ss.content_type_code = None if c is None else self.code(r, c)
        self.unknown_classifications(r, label, by_scheme, [m.SS_AUTHOR, m.SS_CONTENT_TYPE_CODE])
        self.unknown_classifications(
            r, label, by_node, [m.SUBMISSION_SET_CLASSIFICATION, m.SS_LIMITED_METADATA]
        )
        ids = self.identifiers(
            r, label, {m.SS_UNIQUE_ID: "uniqueId", m.SS_SOURCE_ID: "sourceId", m.SS_PATIENT_ID: "patientId"}
        )
        ss.unique_id = ids.get(m.SS_UNIQUE_ID, "")
        ss.source_id = ids.get(m.SS_SOURCE_ID, "")
        ss.patient_id = ids.get(m.SS_PATIENT_ID, "")
        return ss

    def folder(self, r: _Raw) -> m.Folder:
        label = "Folder"
        f = m.Folder()
        self.common(r, f)
        f.title, f.comments = r.title, r.comments
        s = _Slots(self, r, label)
        f.last_update_time = s.single("lastUpdateTime")
        s.rest(f)
        by_scheme, by_node = self.grouped(r)
        f.limited_metadata = m.FOL_LIMITED_METADATA in by_node
        f.codes = [self.code(r, c) for c in by_scheme.get(m.FOL_CODE_LIST, [])]
        self.unknown_classifications(r, label, by_scheme, [m.FOL_CODE_LIST])
        self.unknown_classifications(r, label, by_node, [m.FOLDER_CLASSIFICATION, m.FOL_LIMITED_METADATA])
        ids = self.identifiers(r, label, {m.FOL_UNIQUE_ID: "uniqueId", m.FOL_PATIENT_ID: "patientId"})
        f.unique_id = ids.get(m.FOL_UNIQUE_ID, "")
        f.patient_id = ids.get(m.FOL_PATIENT_ID, "")
        return f

    def association(self, r: _Raw) -> m.Association:
        label = "Association"
        a = m.Association()
        self.common(r, a)
        el = r.element
        a.association_type = el.get("associationType", "")
        a.source = el.get("sourceObject", "")
        a.target = el.get("targetObject", "")
        s = _Slots(self, r, label)
        a.submission_set_status = s.single(SLOT_SUBMISSION_SET_STATUS)
        a.slots = {name: values for name, values in s.values.items() if name not in s.used}
        by_scheme, by_node = self.grouped(r)
        c = self.single(r, label, "associationDocumentation", by_scheme.get(m.ASSOCIATION_DOCUMENTATION, []))
        a.documentation = None if c is None else self.code(r, c)
        self.unknown_classifications(r, label, by_scheme, [m.ASSOCIATION_DOCUMENTATION])
        self.unknown_classifications(r, label, by_node, [])
        for x in r.external_identifiers:
            self.err(
                Rule.UNKNOWN_EXTERNAL_IDENTIFIER,
                r.id,
                object=label,
                id=r.id,
                scheme=x.get("identificationScheme", ""),
            )
        return a


class _Slots:
    """The slots of one object, consumed attribute by attribute; what is left is extra metadata
    (``urn:`` names other than ``urn:ihe:``, ITI TF-3 4.2.3.1.1) or unrecognised."""

    def __init__(self, p: _Parser, r: _Raw, label: str) -> None:
        self.p, self.r, self.label = p, r, label
        self.values: dict[str, list[str]] = {}
        self.used: set[str] = set()
        for name, values in r.slots:
            if name in self.values:
                p.err(Rule.DUPLICATE_SLOT, r.id, object=label, id=r.id, name=name)
            else:
                self.values[name] = values

    def single(self, name: str) -> str | None:
        self.used.add(name)
        values = self.values.get(name)
        if values is None:
            return None
        if len(values) != 1:
            self.p.err(
                Rule.SLOT_NOT_SINGLE, self.r.id, object=self.label, id=self.r.id, name=name, count=len(values)
            )
        return values[0] if values else None

    def multi(self, name: str) -> list[str]:
        self.used.add(name)
        return list(self.values.get(name, []))

    def uri(self) -> str | None:
        """URI, single-valued; a long URI may arrive split into ``1|...``, ``2|...`` values."""
        self.used.add("URI")
        values = self.values.get("URI")
        if not values:
            return None
        if len(values) == 1 and not values[0].startswith("1|"):
            return values[0]
        parts = []
        for v in values:
            n, sep, rest = v.partition("|")
            if not (sep and n.isdigit()):
                self.p.err(
                    Rule.SLOT_NOT_SINGLE,
                    self.r.id,
                    object=self.label,
                    id=self.r.id,
                    name="URI",
                    count=len(values),
                )
                return values[0]
            parts.append((int(n), rest))
        return "".join(rest for _, rest in sorted(parts))

    def rest(self, obj: m.RegistryObject) -> None:
        for name, values in self.values.items():
            if name in self.used:
                continue
            if name.startswith("urn:") and not name.startswith("urn:ihe:"):
                obj.extra_slots[name] = values
            else:
                obj.other_slots[name] = values


def _object_list_of(elem: etree._Element) -> etree._Element | None:
    qn = etree.QName(elem)
    if qn.namespace == RIM and qn.localname == "RegistryObjectList":
        return elem
    if (qn.namespace, qn.localname) == (XDSB, "ProvideAndRegisterDocumentSetRequest"):
        sor = elem.find(f"{{{LCM}}}SubmitObjectsRequest")
        return None if sor is None else _object_list_of(sor)
    if (qn.namespace, qn.localname) in ((LCM, "SubmitObjectsRequest"), (QUERY, "AdhocQueryResponse")):
        rol = elem.find(_q("RegistryObjectList"))
        return rol if rol is not None else etree.Element(_q("RegistryObjectList"))
    return None


def parse_registry_object_list(elem: etree._Element) -> ParsedObjects:
    """Every XDS object of a rim:RegistryObjectList (or of the SubmitObjectsRequest,
    ProvideAndRegisterDocumentSetRequest or AdhocQueryResponse holding it), with no constraint on
    how many of each kind: query responses are parsed with this too."""
    rol = _object_list_of(elem)
    if rol is None:
        return ParsedObjects(errors=[Rule.NOT_A_SUBMISSION.error(element=str(elem.tag))])
    return _Parser().object_list(rol)


def parse_submit_objects_request(elem: etree._Element) -> m.Submission:
    """A submission (ITI-41 / ITI-42 / RAD-68 metadata) from lcm:SubmitObjectsRequest, a
    rim:RegistryObjectList, or the xdsb:ProvideAndRegisterDocumentSetRequest around them.

    Problems are in ``parse_errors``; :func:`xds.metadata.rules.validate_submission` reports them
    together with its own findings."""
    parsed = parse_registry_object_list(elem)
    sub = m.Submission(object_refs=parsed.object_refs, parse_errors=parsed.errors)
    sets = [o for o in parsed.objects if isinstance(o, m.SubmissionSet)]
    if len(sets) > 1:
        sub.parse_errors.append(Rule.SUBMISSION_SET_NOT_UNIQUE.error(count=len(sets)))
    sub.submission_set = sets[0] if sets else None
    for o in parsed.objects:
        if isinstance(o, m.DocumentEntry):
            sub.document_entries.append(o)
        elif isinstance(o, m.Folder):
            sub.folders.append(o)
        elif isinstance(o, m.Association):
            sub.associations.append(o)
    return sub


def parse_registry_object(elem: etree._Element) -> m.RegistryObject:
    """One stored fragment (ExtrinsicObject, RegistryPackage or Association) back into the model.
    Raises ValueError if it is not one, or does not map cleanly."""
    parsed = _Parser().object_list(_wrap([elem]))
    errors = [e for e in parsed.errors if e.is_error]
    if errors or len(parsed.objects) != 1:
        raise ValueError("; ".join(e.context for e in errors) or f"not one XDS object: {elem.tag}")
    return parsed.objects[0]


def _wrap(children: Iterable[etree._Element]) -> etree._Element:
    rol = etree.Element(_q("RegistryObjectList"), nsmap=NSMAP)
    for c in children:
        rol.append(c)
    return rol


# --- serialisation ---------------------------------------------------------------------------------

# Namespace for the ids of Classifications and ExternalIdentifiers (uuid5 over owner id and role).
_ID_NAMESPACE = uuid.UUID("0c4e9f8a-5d2b-5b7e-9a51-3f6d2c1e8b70")


class _Writer:
    def __init__(self, owner: m.RegistryObject) -> None:
        self.owner = owner.entry_uuid
        self.n = 0

    def child_id(self, role: str) -> str:
        self.n += 1
        return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, f"{self.owner}\n{role}\n{self.n}"))

    def classification(
        self,
        parent: etree._Element,
        *,
        scheme: str | None = None,
        node: str | None = None,
        node_representation: str | None = None,
    ) -> etree._Element:
        c = etree.SubElement(parent, _q("Classification"))
        c.set("id", self.child_id(scheme or node or ""))
        c.set("objectType", OT_CLASSIFICATION)
        if scheme:
            c.set("classificationScheme", scheme)
        c.set("classifiedObject", self.owner)
        if node:
            c.set("classificationNode", node)
        if node_representation is not None:
            c.set("nodeRepresentation", node_representation)
        return c

    def code(self, parent: etree._Element, scheme: str, code: m.Code | None) -> None:
        if code is None:
            return
        c = self.classification(parent, scheme=scheme, node_representation=code.code)
        if code.scheme:
            _slot(c, "codingScheme", [code.scheme])
        if code.display_name:
            _name(c, "Name", code.display_name)

    def author(self, parent: etree._Element, scheme: str, a: m.Author) -> None:
        c = self.classification(parent, scheme=scheme, node_representation="")
        if a.person:
            _slot(c, "authorPerson", [a.person])
        for name, values in (
            ("authorInstitution", a.institutions),
            ("authorRole", a.roles),
            ("authorSpecialty", a.specialties),
            ("authorTelecommunication", a.telecommunications),
        ):
            if values:
                _slot(c, name, values)

    def external_identifier(self, parent: etree._Element, scheme: str, value: str, name: str) -> None:
        if not value:
            return
        x = etree.SubElement(parent, _q("ExternalIdentifier"))
        x.set("id", self.child_id(scheme))
        x.set("objectType", OT_EXTERNAL_IDENTIFIER)
        x.set("identificationScheme", scheme)
        x.set("registryObject", self.owner)
        x.set("value", value)
        _name(x, "Name", name)


def _slot(parent: etree._Element, name: str, values: Sequence[str]) -> None:
    s = etree.SubElement(parent, _q("Slot"), name=name)
    vl = etree.SubElement(s, _q("ValueList"))
    for v in values:
        etree.SubElement(vl, _q("Value")).text = v


def _name(parent: etree._Element, tag: str, value: str) -> None:
    etree.SubElement(etree.SubElement(parent, _q(tag)), _q("LocalizedString"), value=value)


def _start(tag: str, obj: m.RegistryObject, object_type: str | None) -> etree._Element:
    el = etree.Element(_q(tag), nsmap=NSMAP)
    el.set("id", obj.entry_uuid)
    if obj.home_community_id:
        el.set("home", obj.home_community_id)
    if obj.lid:
        el.set("lid", obj.lid)
    if object_type:
        el.set("objectType", object_type)
    if obj.status:
        el.set("status", obj.status)
    return el


def _slots_tail(el: etree._Element, obj: m.RegistryObject) -> None:
    for name, values in obj.extra_slots.items():
        _slot(el, name, values)
    for name, values in obj.other_slots.items():
        _slot(el, name, values)


def _texts(el: etree._Element, obj: m.RegistryObject, title: str | None, comments: str | None) -> None:
    if title is not None:
        _name(el, "Name", title)
    if comments is not None:
        _name(el, "Description", comments)
    if obj.version_name is not None:
        etree.SubElement(el, _q("VersionInfo"), versionName=obj.version_name)


def _split_uri(uri: str) -> list[str]:
    if len(uri) <= MAX_SLOT_VALUE:
        return [uri]
    step = MAX_SLOT_VALUE - 4  # room for an index of up to three digits and "|"
    return [f"{i + 1}|{uri[o : o + step]}" for i, o in enumerate(range(0, len(uri), step))]


def _document_entry_slots(de: m.DocumentEntry) -> list[tuple[str, Sequence[str]]]:
    """The XDS attribute slots of a DocumentEntry, in canonical order."""
    out: list[tuple[str, Sequence[str]]] = [
        (name, [value])
        for name, value in (
            ("creationTime", de.creation_time),
            ("languageCode", de.language_code),
            ("legalAuthenticator", de.legal_authenticator),
            ("serviceStartTime", de.service_start_time),
            ("serviceStopTime", de.service_stop_time),
            ("sourcePatientId", de.source_patient_id),
        )
        if value is not None
    ]
    if de.source_patient_info:
        out.append(("sourcePatientInfo", de.source_patient_info))
    if de.hash is not None:
        out.append(("hash", [de.hash]))
    if de.size is not None:
        out.append(("size", [str(de.size)]))
    if de.repository_unique_id is not None:
        out.append(("repositoryUniqueId", [de.repository_unique_id]))
    if de.uri is not None:
        out.append(("URI", _split_uri(de.uri)))
    if de.reference_ids:
        out.append((SLOT_REFERENCE_ID_LIST, de.reference_ids))
    if de.document_availability is not None:
        out.append(("documentAvailability", [de.document_availability]))
    return out


def serialize_document_entry(de: m.DocumentEntry) -> etree._Element:
    """rim:ExtrinsicObject for a DocumentEntry (ITI TF-3 4.2.3.2)."""
    el = _start("ExtrinsicObject", de, de.object_type)
    el.set("mimeType", de.mime_type)
    for name, values in _document_entry_slots(de):
        _slot(el, name, values)
    _slots_tail(el, de)
    _texts(el, de, de.title, de.comments)
    w = _Writer(de)
    for a in de.authors:
        w.author(el, m.DE_AUTHOR, a)
    w.code(el, m.DE_CLASS_CODE, de.class_code)
    for c in de.confidentiality_codes:
        w.code(el, m.DE_CONFIDENTIALITY_CODE, c)
    for c in de.event_codes:
        w.code(el, m.DE_EVENT_CODE, c)
    w.code(el, m.DE_FORMAT_CODE, de.format_code)
    w.code(el, m.DE_HEALTHCARE_FACILITY_TYPE_CODE, de.healthcare_facility_type_code)
    w.code(el, m.DE_PRACTICE_SETTING_CODE, de.practice_setting_code)
    w.code(el, m.DE_TYPE_CODE, de.type_code)
    if de.limited_metadata:
        w.classification(el, node=m.DE_LIMITED_METADATA)
    w.external_identifier(el, m.DE_PATIENT_ID, de.patient_id, "XDSDocumentEntry.patientId")
    w.external_identifier(el, m.DE_UNIQUE_ID, de.unique_id, "XDSDocumentEntry.uniqueId")
    return el


def serialize_submission_set(ss: m.SubmissionSet) -> etree._Element:
    """rim:RegistryPackage classified as SubmissionSet (ITI TF-3 4.2.3.3); the classification is
    nested in the package."""
    el = _start("RegistryPackage", ss, OT_REGISTRY_PACKAGE)
    if ss.submission_time is not None:
        _slot(el, "submissionTime", [ss.submission_time])
    if ss.intended_recipients:
        _slot(el, "intendedRecipient", ss.intended_recipients)
    _slots_tail(el, ss)
    _texts(el, ss, ss.title, ss.comments)
    w = _Writer(ss)
    for a in ss.authors:
        w.author(el, m.SS_AUTHOR, a)
    w.code(el, m.SS_CONTENT_TYPE_CODE, ss.content_type_code)
    w.classification(el, node=m.SUBMISSION_SET_CLASSIFICATION)
    if ss.limited_metadata:
        w.classification(el, node=m.SS_LIMITED_METADATA)
    w.external_identifier(el, m.SS_UNIQUE_ID, ss.unique_id, "XDSSubmissionSet.uniqueId")
    w.external_identifier(el, m.SS_SOURCE_ID, ss.source_id, "XDSSubmissionSet.sourceId")
    w.external_identifier(el, m.SS_PATIENT_ID, ss.patient_id, "XDSSubmissionSet.patientId")
    return el


def serialize_folder(f: m.Folder) -> etree._Element:
    """rim:RegistryPackage classified as Folder (ITI TF-3 4.2.3.4)."""
    el = _start("RegistryPackage", f, OT_REGISTRY_PACKAGE)
    if f.last_update_time is not None:
        _slot(el, "lastUpdateTime", [f.last_update_time])
    _slots_tail(el, f)
    _texts(el, f, f.title, f.comments)
    w = _Writer(f)
    for c in f.codes:
        w.code(el, m.FOL_CODE_LIST, c)
    w.classification(el, node=m.FOLDER_CLASSIFICATION)
    if f.limited_metadata:
        w.classification(el, node=m.FOL_LIMITED_METADATA)
    w.external_identifier(el, m.FOL_PATIENT_ID, f.patient_id, "XDSFolder.patientId")
    w.external_identifier(el, m.FOL_UNIQUE_ID, f.unique_id, "XDSFolder.uniqueId")
    return el


def serialize_association(a: m.Association) -> etree._Element:
    """rim:Association (ITI TF-3 4.2.2)."""
    el = _start("Association", a, OT_ASSOCIATION)
    el.set("associationType", a.association_type)
    el.set("sourceObject", a.source)
    el.set("targetObject", a.target)
    if a.submission_set_status is not None:
        _slot(el, SLOT_SUBMISSION_SET_STATUS, [a.submission_set_status])
    for name, values in a.slots.items():
        _slot(el, name, values)
    _slots_tail(el, a)
    _texts(el, a, None, None)
    if a.documentation is not None:
        _Writer(a).code(el, m.ASSOCIATION_DOCUMENTATION, a.documentation)
    return el


def serialize_object(obj: m.RegistryObject) -> etree._Element:
    if isinstance(obj, m.DocumentEntry):
        return serialize_document_entry(obj)
    if isinstance(obj, m.SubmissionSet):
        return serialize_submission_set(obj)
    if isinstance(obj, m.Folder):
        return serialize_folder(obj)
    if isinstance(obj, m.Association):
        return serialize_association(obj)
    raise TypeError(f"not an XDS object: {type(obj).__name__}")


def serialize_fragment(obj: m.RegistryObject) -> bytes:
    """The canonical stored form of one object: UTF-8, no XML declaration, ``rim`` declared on
    the element itself, so fragments can be concatenated inside any RegistryObjectList."""
    return etree.tostring(serialize_object(obj), encoding="UTF-8", xml_declaration=False)


def object_ref(id: str, home: str | None = None) -> etree._Element:
    """rim:ObjectRef (ObjectRef query results, references in submissions; ``home`` for XCA)."""
    el = etree.Element(_q("ObjectRef"), nsmap=NSMAP)
    el.set("id", id)
    if home:
        el.set("home", home)
    return el


def serialize_registry_object_list(
    objects: Iterable[m.RegistryObject], object_refs: Iterable[str] = ()
) -> etree._Element:
    rol = etree.Element(_q("RegistryObjectList"), nsmap=NSMAP)
    for ref in object_refs:
        rol.append(object_ref(ref))
    for obj in objects:
        rol.append(serialize_object(obj))
    return rol


def serialize_submit_objects_request(submission: m.Submission) -> etree._Element:
    """lcm:SubmitObjectsRequest for a submission (what a repository sends on in ITI-42)."""
    sor = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    sor.append(serialize_registry_object_list(submission.objects(), submission.object_refs))
    return sor


# --- the canonical fragment as text, without building a tree ---------------------------------------
#
# The registry stores one fragment per object per registration; building the lxml tree above only
# to serialise it was a third of an ITI-42's CPU. :func:`fragment_text` writes the same characters
# directly: the same element and attribute order, lxml's escaping (attributes: & < > " and the
# whitespace controls as character references; text: & < > and CR). Values lxml would refuse
# (control characters, surrogates, non-strings) send the object through the tree serialiser, which
# raises as before. tests/metadata/test_fragment_text.py holds the two to the same output.

_RIM_ROOT = f' xmlns:rim="{RIM}"'
_ATTR_SPECIAL = re.compile('[&<>"\x00-\x1f\ud800-\udfff\ufffe\uffff]')
_TEXT_SPECIAL = re.compile("[&<>\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _NotPlain(Exception):
    """A value the text serialiser leaves to lxml (which refuses it with its own error)."""


def _attr(v: str) -> str:
    if _ATTR_SPECIAL.search(v) is None:
        return v
    if _NOT_XML.search(v) is not None:
        raise _NotPlain
    return (
        v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    )


def _text(v: str) -> str:
    if _TEXT_SPECIAL.search(v) is None:
        return v
    if _NOT_XML.search(v) is not None:
        raise _NotPlain
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _t_slot(out: list[str], name: str, values: Sequence[str]) -> None:
    if not values:
        out.append(f'<rim:Slot name="{_attr(name)}"><rim:ValueList/></rim:Slot>')
        return
    out.append(f'<rim:Slot name="{_attr(name)}"><rim:ValueList>')
    for v in values:
        out.append(f"<rim:Value>{_text(v)}</rim:Value>")
    out.append("</rim:ValueList></rim:Slot>")


def _t_name(out: list[str], tag: str, value: str) -> None:
    out.append(f'<rim:{tag}><rim:LocalizedString value="{_attr(value)}"/></rim:{tag}>')


class _TextWriter:
    """:class:`_Writer`'s twin over a list of strings (same child ids)."""

    def __init__(self, owner: m.RegistryObject, out: list[str]) -> None:
        self.owner = owner.entry_uuid
        self.owner_attr = _attr(owner.entry_uuid)
        self.out = out
        self.n = 0

    def child_id(self, role: str) -> str:
        self.n += 1
        return "urn:uuid:" + str(uuid.uuid5(_ID_NAMESPACE, f"{self.owner}\n{role}\n{self.n}"))

    def classification_open(
        self, *, scheme: str | None = None, node: str | None = None, node_representation: str | None = None
    ) -> str:
        """The start tag without its closing ``>`` / ``/>``."""
        s = f'<rim:Classification id="{_attr(self.child_id(scheme or node or ""))}" objectType="{OT_CLASSIFICATION}"'
        if scheme:
            s += f' classificationScheme="{_attr(scheme)}"'
        s += f' classifiedObject="{self.owner_attr}"'
        if node:
            s += f' classificationNode="{_attr(node)}"'
        if node_representation is not None:
            s += f' nodeRepresentation="{_attr(node_representation)}"'
        return s

    def classification(self, *, node: str) -> None:
        self.out.append(self.classification_open(node=node) + "/>")

    def code(self, scheme: str, code: m.Code | None) -> None:
        if code is None:
            return
        out = self.out
        start = self.classification_open(scheme=scheme, node_representation=code.code)
        if not code.scheme and not code.display_name:
            out.append(start + "/>")
            return
        out.append(start + ">")
        if code.scheme:
            _t_slot(out, "codingScheme", [code.scheme])
        if code.display_name:
            _t_name(out, "Name", code.display_name)
        out.append("</rim:Classification>")

    def author(self, scheme: str, a: m.Author) -> None:
        out = self.out
        start = self.classification_open(scheme=scheme, node_representation="")
        slots = [
            (name, values)
            for name, values in (
                ("authorPerson", [a.person] if a.person else []),
                ("authorInstitution", a.institutions),
                ("authorRole", a.roles),
                ("authorSpecialty", a.specialties),
                ("authorTelecommunication", a.telecommunications),
            )
            if values
        ]
        if not slots:
            out.append(start + "/>")
            return
        out.append(start + ">")
        for name, values in slots:
            _t_slot(out, name, values)
        out.append("</rim:Classification>")

    def external_identifier(self, scheme: str, value: str, name: str) -> None:
        if not value:
            return
        self.out.append(
            f'<rim:ExternalIdentifier id="{_attr(self.child_id(scheme))}" objectType="{OT_EXTERNAL_IDENTIFIER}"'
            f' identificationScheme="{_attr(scheme)}" registryObject="{self.owner_attr}" value="{_attr(value)}">'
        )
        _t_name(self.out, "Name", name)
        self.out.append("</rim:ExternalIdentifier>")


def _t_start(out: list[str], tag: str, obj: m.RegistryObject, object_type: str | None, more: str = "") -> None:
    s = f'<rim:{tag}{_RIM_ROOT} id="{_attr(obj.entry_uuid)}"'
    if obj.home_community_id:
        s += f' home="{_attr(obj.home_community_id)}"'
    if obj.lid:
        s += f' lid="{_attr(obj.lid)}"'
    if object_type:
        s += f' objectType="{_attr(object_type)}"'
    if obj.status:
        s += f' status="{_attr(obj.status)}"'
    out.append(s + more + ">")


def _t_end(out: list[str], tag: str) -> str:
    if len(out) == 1:  # no child: an empty element, as lxml writes it
        return out[0][:-1] + "/>"
    out.append(f"</rim:{tag}>")
    return "".join(out)


def _t_tail(out: list[str], obj: m.RegistryObject, title: str | None, comments: str | None) -> None:
    for name, values in obj.extra_slots.items():
        _t_slot(out, name, values)
    for name, values in obj.other_slots.items():
        _t_slot(out, name, values)
    if title is not None:
        _t_name(out, "Name", title)
    if comments is not None:
        _t_name(out, "Description", comments)
    if obj.version_name is not None:
        out.append(f'<rim:VersionInfo versionName="{_attr(obj.version_name)}"/>')


def _text_document_entry(de: m.DocumentEntry) -> str:
    out: list[str] = []
    _t_start(out, "ExtrinsicObject", de, de.object_type, f' mimeType="{_attr(de.mime_type)}"')
    for name, values in _document_entry_slots(de):
        _t_slot(out, name, values)
    _t_tail(out, de, de.title, de.comments)
    w = _TextWriter(de, out)
    for a in de.authors:
        w.author(m.DE_AUTHOR, a)
    w.code(m.DE_CLASS_CODE, de.class_code)
    for c in de.confidentiality_codes:
        w.code(m.DE_CONFIDENTIALITY_CODE, c)
    for c in de.event_codes:
        w.code(m.DE_EVENT_CODE, c)
    w.code(m.DE_FORMAT_CODE, de.format_code)
    w.code(m.DE_HEALTHCARE_FACILITY_TYPE_CODE, de.healthcare_facility_type_code)
    w.code(m.DE_PRACTICE_SETTING_CODE, de.practice_setting_code)
    w.code(m.DE_TYPE_CODE, de.type_code)
    if de.limited_metadata:
        w.classification(node=m.DE_LIMITED_METADATA)
    w.external_identifier(m.DE_PATIENT_ID, de.patient_id, "XDSDocumentEntry.patientId")
    w.external_identifier(m.DE_UNIQUE_ID, de.unique_id, "XDSDocumentEntry.uniqueId")
    return _t_end(out, "ExtrinsicObject")


def _text_submission_set(ss: m.SubmissionSet) -> str:
    out: list[str] = []
    _t_start(out, "RegistryPackage", ss, OT_REGISTRY_PACKAGE)
    if ss.submission_time is not None:
        _t_slot(out, "submissionTime", [ss.submission_time])
    if ss.intended_recipients:
        _t_slot(out, "intendedRecipient", ss.intended_recipients)
    _t_tail(out, ss, ss.title, ss.comments)
    w = _TextWriter(ss, out)
    for a in ss.authors:
        w.author(m.SS_AUTHOR, a)
    w.code(m.SS_CONTENT_TYPE_CODE, ss.content_type_code)
    w.classification(node=m.SUBMISSION_SET_CLASSIFICATION)
    if ss.limited_metadata:
        w.classification(node=m.SS_LIMITED_METADATA)
    w.external_identifier(m.SS_UNIQUE_ID, ss.unique_id, "XDSSubmissionSet.uniqueId")
    w.external_identifier(m.SS_SOURCE_ID, ss.source_id, "XDSSubmissionSet.sourceId")
    w.external_identifier(m.SS_PATIENT_ID, ss.patient_id, "XDSSubmissionSet.patientId")
    return _t_end(out, "RegistryPackage")


def _text_folder(f: m.Folder) -> str:
    out: list[str] = []
    _t_start(out, "RegistryPackage", f, OT_REGISTRY_PACKAGE)
    if f.last_update_time is not None:
        _t_slot(out, "lastUpdateTime", [f.last_update_time])
    _t_tail(out, f, f.title, f.comments)
    w = _TextWriter(f, out)
    for c in f.codes:
        w.code(m.FOL_CODE_LIST, c)
    w.classification(node=m.FOLDER_CLASSIFICATION)
    if f.limited_metadata:
        w.classification(node=m.FOL_LIMITED_METADATA)
    w.external_identifier(m.FOL_PATIENT_ID, f.patient_id, "XDSFolder.patientId")
    w.external_identifier(m.FOL_UNIQUE_ID, f.unique_id, "XDSFolder.uniqueId")
    return _t_end(out, "RegistryPackage")


def _text_association(a: m.Association) -> str:
    out: list[str] = []
    more = (
        f' associationType="{_attr(a.association_type)}" sourceObject="{_attr(a.source)}"'
        f' targetObject="{_attr(a.target)}"'
    )
    _t_start(out, "Association", a, OT_ASSOCIATION, more)
    if a.submission_set_status is not None:
        _t_slot(out, SLOT_SUBMISSION_SET_STATUS, [a.submission_set_status])
    for name, values in a.slots.items():
        _t_slot(out, name, values)
    _t_tail(out, a, None, None)
    if a.documentation is not None:
        _TextWriter(a, out).code(m.ASSOCIATION_DOCUMENTATION, a.documentation)
    return _t_end(out, "Association")


_TEXT_SERIALIZERS: dict[type, Callable[[Any], str]] = {
    m.DocumentEntry: _text_document_entry,
    m.SubmissionSet: _text_submission_set,
    m.Folder: _text_folder,
    m.Association: _text_association,
}


def fragment_text(obj: m.RegistryObject) -> str:
    """The canonical stored form of ``obj`` as text: exactly
    ``etree.tostring(serialize_object(obj), encoding="unicode")``, several times faster."""
    write = _TEXT_SERIALIZERS.get(type(obj))
    if write is not None:
        try:
            return write(obj)
        except (_NotPlain, TypeError, AttributeError):
            pass  # lxml's way, and its error
    return etree.tostring(serialize_object(obj), encoding="unicode")
