"""Building blocks of the ITI-18 tests: XDS objects written straight into the registry tables
(with their canonical fragments), AdhocQueryRequests, and answers checked against the official
ebRS 3.0 query schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from lxml import etree
from sqlalchemy import Engine

from tests.registry.conftest import AFFINITY_DOMAIN, SHARED
from xds.config import RegistryConfig
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.namespaces import QUERY, RIM, RS
from xds.registry.store import RegistryStore
from xds.registry.stored_query import BY_NAME, stored_query

QUERY_XSD = SHARED / "corpus" / "schemas" / "ihe-iti-rahulsom" / "iti" / "schema" / "ebRS" / "query.xsd"

CLASS = m.Code("DEMO-Consult", "1.3.6.1.4.1.21367.100.1")
OTHER_CLASS = m.Code("DEMO-Imaging", "1.3.6.1.4.1.21367.100.1")
FORMAT = m.Code("urn:ihe:rad:TEXT", "1.2.840.10008.2.6.1")
OTHER_FORMAT = m.Code("urn:ihe:rad:PDF", "1.2.840.10008.2.6.1")
EVENT_A = m.Code("T-D4909", "SNM3")
EVENT_B = m.Code("T-62002", "SNM3")
EVENT_C = m.Code("M-14600", "SNM3")
NORMAL = m.Code("N", "2.16.840.1.113883.5.25")
RESTRICTED = m.Code("R", "2.16.840.1.113883.5.25")


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def oid() -> str:
    return f"1.2.3.{uuid.uuid4().int % 10**12}"


@dataclass
class Data:
    """Objects of one test: fresh patient ids, so tests share the session's database without
    emptying it (every query is scoped by patient or by fresh ids)."""

    store: RegistryStore
    patient: str = field(default_factory=lambda: _patient_id())
    other_patient: str = field(default_factory=lambda: _patient_id())

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def document(self, **kw: object) -> m.DocumentEntry:
        de = m.DocumentEntry(
            entry_uuid=urn(),
            unique_id=oid(),
            patient_id=self.patient,
            status=m.STATUS_APPROVED,
            mime_type="text/plain",
            class_code=CLASS,
            type_code=m.Code("34108-1", "2.16.840.1.113883.6.1"),
            format_code=FORMAT,
            healthcare_facility_type_code=m.Code("Outpatient", "Connect-a-thon healthcareFacilityTypeCodes"),
            practice_setting_code=m.Code("General Medicine", "Connect-a-thon practiceSettingCodes"),
            confidentiality_codes=[NORMAL],
            event_codes=[EVENT_A],
            authors=[m.Author(person="^Smitty^Gerald^^^", institutions=["Cleveland Clinic"])],
            creation_time="20041224",
            service_start_time="200412230800",
            service_stop_time="200412230801",
            hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
            size=1234,
            repository_unique_id="1.19.6.24.109.42.1.5",
        )
        return _set(de, kw)

    def submission_set(self, **kw: object) -> m.SubmissionSet:
        ss = m.SubmissionSet(
            entry_uuid=urn(),
            unique_id=oid(),
            source_id="1.3.6.1.4.1.21367.4",
            patient_id=self.patient,
            status=m.STATUS_APPROVED,
            submission_time="20041225235050",
            content_type_code=m.Code("225728007", "2.16.840.1.113883.6.96"),
            authors=[m.Author(person="^Dopplemeyer^Sherry^^^", institutions=["Cleveland Clinic"])],
        )
        return _set(ss, kw)

    def folder(self, **kw: object) -> m.Folder:
        f = m.Folder(
            entry_uuid=urn(),
            unique_id=oid(),
            patient_id=self.patient,
            status=m.STATUS_APPROVED,
            last_update_time="20041225235050",
            codes=[m.Code("Referrals", "1.3.6.1.4.1.21367.2017.3")],
        )
        return _set(f, kw)

    def load(self, *objects: m.RegistryObject) -> None:
        """Write the objects in one transaction, each with its canonical fragment."""
        with self.store.transaction() as tx:
            for o in objects:
                if isinstance(o, m.SubmissionSet):
                    tx.add_submission_set(o, fragment(o))
            tx.add_document_entries(
                [(o, fragment(o)) for o in objects if isinstance(o, m.DocumentEntry)], None
            )
            tx.add_folders([(o, fragment(o)) for o in objects if isinstance(o, m.Folder)])
            tx.add_associations([(o, fragment(o)) for o in objects if isinstance(o, m.Association)], None)

    def submit(
        self,
        documents: Sequence[m.DocumentEntry] = (),
        folders: Sequence[m.Folder] = (),
        in_folder: Iterable[tuple[m.Folder, m.DocumentEntry]] = (),
        *,
        ss: m.SubmissionSet | None = None,
    ) -> Submitted:
        """A SubmissionSet holding ``documents`` and ``folders`` (HasMember, SubmissionSetStatus
        Original) and the Folder -> DocumentEntry HasMembers ``in_folder``, each itself a member
        of the SubmissionSet (ITI TF-3 4.1.5)."""
        ss = ss or self.submission_set()
        out = Submitted(ss, list(documents), list(folders))
        for o in (*documents, *folders):
            out.associations.append(has_member(ss, o, submission_set_status="Original"))
        for f, d in in_folder:
            inner = has_member(f, d)
            out.associations += [inner, has_member(ss, inner)]
        self.load(ss, *documents, *folders, *out.associations)
        return out

    def ask(self, query: str, slots: Slots, **kw: Any) -> Answer:
        return ask(self.engine, query, slots, **kw)


def _patient_id() -> str:
    return f"{uuid.uuid4().hex[:15]}^^^&{AFFINITY_DOMAIN}&ISO"


def _set(obj: Any, kw: dict[str, object]) -> Any:
    for k, v in kw.items():
        setattr(obj, k, v)
    return obj


def association(kind: str, source: str, target: str, **kw: object) -> m.Association:
    a = m.Association(
        entry_uuid=urn(), association_type=kind, source=source, target=target, status=m.STATUS_APPROVED
    )
    return _set(a, kw)


def has_member(source: m.RegistryObject, target: m.RegistryObject, **kw: object) -> m.Association:
    return association(m.HAS_MEMBER, source.entry_uuid, target.entry_uuid, **kw)


def fragment(obj: m.RegistryObject) -> str:
    return etree.tostring(ebrim.serialize_object(obj), encoding="unicode")


@dataclass
class Submitted:
    """A submission as ITI-42 leaves it: the SubmissionSet, its members, and its HasMembers."""

    submission_set: m.SubmissionSet
    documents: list[m.DocumentEntry] = field(default_factory=list)
    folders: list[m.Folder] = field(default_factory=list)
    associations: list[m.Association] = field(default_factory=list)


# --- requests --------------------------------------------------------------------------------------


def qs(*values: str) -> str:
    """A list value: ``('a','b')``."""
    return "(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def q1(value: str) -> str:
    """A single string value: ``'a'``."""
    return "'" + value.replace("'", "''") + "'"


def code(c: m.Code) -> str:
    return f"{c.code}^^^{c.scheme}"


Slots = Sequence[tuple[str, str | Sequence[str]]]


def adhoc_query_request(
    query: str, slots: Slots, *, returns: str = "LeafClass", home: str | None = None
) -> etree._Element:
    """``query`` is a stored query name or id; each slot is (name, value or values), and a name
    given twice makes two Slots."""
    query_id = BY_NAME[query].id if query in BY_NAME else query
    req = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(req, f"{{{QUERY}}}ResponseOption", returnType=returns, returnComposedObjects="true")
    aq = etree.SubElement(req, f"{{{RIM}}}AdhocQuery", id=query_id)
    if home:
        aq.set("home", home)
    for name, values in slots:
        slot = etree.SubElement(aq, f"{{{RIM}}}Slot", name=name)
        vl = etree.SubElement(slot, f"{{{RIM}}}ValueList")
        for v in [values] if isinstance(values, str) else values:
            etree.SubElement(vl, f"{{{RIM}}}Value").text = v
    return req


@cache
def query_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(QUERY_XSD)))


@dataclass
class Answer:
    element: etree._Element

    @property
    def status(self) -> str:
        return self.element.get("status", "").rsplit(":", 1)[-1]

    @property
    def error_codes(self) -> list[str]:
        return [e.get("errorCode", "") for e in self.element.iter(f"{{{RS}}}RegistryError")]

    def ids(self, local: str) -> set[str]:
        return {
            e.get("id", "") for e in self.element.iterfind(f"{{{RIM}}}RegistryObjectList/{{{RIM}}}{local}")
        }

    @property
    def documents(self) -> set[str]:
        return self.ids("ExtrinsicObject")

    @property
    def packages(self) -> set[str]:
        return self.ids("RegistryPackage")

    @property
    def associations(self) -> set[str]:
        return self.ids("Association")

    @property
    def object_refs(self) -> set[str]:
        return self.ids("ObjectRef")

    @property
    def objects(self) -> list[etree._Element]:
        return list(self.element.find(f"{{{RIM}}}RegistryObjectList"))


def ask(
    engine: Engine,
    query: str,
    slots: Slots,
    *,
    returns: str = "LeafClass",
    home: str | None = None,
    config: RegistryConfig | None = None,
    home_community_id: str | None = None,
) -> Answer:
    """Run a stored query and check the answer against the ebRS 3.0 query schema."""
    req = adhoc_query_request(query, slots, returns=returns, home=home)
    resp = stored_query(engine, req, config=config or RegistryConfig(), home_community_id=home_community_id)
    schema = query_schema()
    assert schema.validate(resp), schema.error_log
    return Answer(resp)


def ids(*objects: m.RegistryObject) -> set[str]:
    return {o.entry_uuid for o in objects}
