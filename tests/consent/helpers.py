"""Registry content for the consent tests: submissions as ITI-42 leaves them (every DocumentEntry
knows the SubmissionSet that brought it), from two organisations, and the queries to read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.registry.stored_query_data import (
    Answer,
    Data,
    Submitted,
    adhoc_query_request,
    fragment,
    has_member,
    q1,
    qs,
    query_schema,
)
from xds.config import RegistryConfig
from xds.consent import Requester
from xds.metadata import model as m
from xds.registry.stored_query import stored_query

HOSPITAL = "2.16.840.1.113883.3.239.99.1"  # the registering organisation (SubmissionSet sourceId)
CLINIC = "2.16.840.1.113883.3.239.99.2"  # another organisation
STUDY_TYPE = m.REF_STUDY_INSTANCE_UID
APPROVED = qs(m.STATUS_APPROVED)


def study_ref(uid: str) -> str:
    return f"{uid}^^^^{STUDY_TYPE}"


@dataclass
class Province(Data):
    """:class:`Data` whose submissions record which SubmissionSet brought each DocumentEntry."""

    def submit(  # type: ignore[override]
        self,
        documents: Sequence[m.DocumentEntry] = (),
        folders: Sequence[m.Folder] = (),
        in_folder: Sequence[tuple[m.Folder, m.DocumentEntry]] = (),
        *,
        ss: m.SubmissionSet | None = None,
        source: str = HOSPITAL,
        references: Sequence[m.RegistryObject] = (),
    ) -> Submitted:
        ss = ss or self.submission_set(source_id=source)
        out = Submitted(ss, list(documents), list(folders))
        for o in (*documents, *folders):
            out.associations.append(has_member(ss, o, submission_set_status="Original"))
        for o in references:
            out.associations.append(has_member(ss, o, submission_set_status="Reference"))
        for f, d in in_folder:
            inner = has_member(f, d)
            out.associations += [inner, has_member(ss, inner)]
        with self.store.transaction() as tx:
            tx.add_submission_set(ss, fragment(ss))
            tx.add_document_entries([(d, fragment(d)) for d in documents], ss.entry_uuid)
            tx.add_folders([(f, fragment(f)) for f in folders])
            tx.add_associations([(a, fragment(a)) for a in out.associations], ss.entry_uuid)
        return out

    def relate(
        self, kind: str, source: m.DocumentEntry, target: m.DocumentEntry
    ) -> tuple[m.Association, m.SubmissionSet]:
        """An RPLC / APND / XFRM between two documents, in a (HOSPITAL) SubmissionSet of its own."""
        from tests.registry.stored_query_data import association

        a = association(kind, source.entry_uuid, target.entry_uuid)
        ss = self.submission_set(source_id=HOSPITAL)
        with self.store.transaction() as tx:
            tx.add_submission_set(ss, fragment(ss))
            tx.add_associations([(a, fragment(a))], ss.entry_uuid)
        return a, ss

    def query(
        self,
        name: str,
        slots: Sequence[tuple[str, str]],
        *,
        returns: str = "LeafClass",
        requester: Requester | None = None,
        max_results: int = 5000,
        home: str | None = None,
    ) -> Answer:
        req = adhoc_query_request(name, slots, returns=returns, home=home)
        config = RegistryConfig(max_results=max_results)
        resp = stored_query(self.engine, req, config=config, requester=requester)
        schema = query_schema()
        assert schema.validate(resp), schema.error_log
        return Answer(resp)

    def get_all(self, patient: str | None = None, **kw: object) -> Answer:
        slots = [
            ("$patientId", q1(patient or self.patient)),
            ("$XDSDocumentEntryStatus", APPROVED),
            ("$XDSSubmissionSetStatus", APPROVED),
            ("$XDSFolderStatus", APPROVED),
        ]
        return self.query("GetAll", slots, **kw)  # type: ignore[arg-type]

    def find_documents(self, patient: str | None = None, **kw: object) -> Answer:
        slots = [("$XDSDocumentEntryPatientId", q1(patient or self.patient)), ("$XDSDocumentEntryStatus", APPROVED)]
        return self.query("FindDocuments", slots, **kw)  # type: ignore[arg-type]


def everything(answer: Answer) -> set[str]:
    """Every object id of an answer, LeafClass or ObjectRef."""
    return {o.get("id", "") for o in answer.objects}
