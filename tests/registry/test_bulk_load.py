"""Bulk load (xds.registry.bulk_load, ``xds bulk-load``): submissions written in batches straight
into the registry tables are registered exactly as ITI-42 registers them, with the same checks and
error codes, and ITI-18 finds them like any other. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from bench.registry_data import RegistryData, patient_id, write_files
from tests.registry import builders as b
from tests.registry.conftest import AFFINITY_DOMAIN, OTHER_PATIENT, PATIENT
from tests.registry.stored_query_data import adhoc_query_request, ask, code, q1, qs, query_schema
from xds import cli
from xds.metadata import model as m
from xds.namespaces import QUERY, RIM, SOAP12, WSA
from xds.registry import Registry
from xds.registry import bulk_load as bl
from xds.registry import schema as s
from xds.registry.store import DOCUMENT_ENTRY, SUBMISSION_SET, RegistryStore
from xds.registry.stored_query import ACTION, RESPONSE_ACTION, iti18_handler, stored_query
from xds.soap.dispatch import Endpoint

APPROVED = qs(m.STATUS_APPROVED)


def data(patients: int = 3, seed: int = 7) -> RegistryData:
    return RegistryData(patients, seed=seed, authority=AFFINITY_DOMAIN)


def load(registry: Registry, subs, **kw) -> bl.LoadReport:  # type: ignore[no-untyped-def]
    kw.setdefault("patients", "register")
    kw.setdefault("batch_size", 4)
    return bl.BulkLoader(registry, **kw).load(subs, analyze_after=False)


def find_documents(registry: Registry, patient: str, *slots: tuple[str, str]) -> set[str]:
    base = [("$XDSDocumentEntryPatientId", q1(patient)), ("$XDSDocumentEntryStatus", APPROVED)]
    answer = ask(registry.engine, "FindDocuments", [*base, *slots])
    assert answer.status == "Success", answer.error_codes
    return answer.documents


def rows(store: RegistryStore) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(select(*t.c)))
            for t in s.metadata.sorted_tables
            if t is not s.patient
        }


def approved(sub: m.Submission) -> set[str]:
    return {de.entry_uuid for de in sub.document_entries}


# --- loaded like registered ------------------------------------------------------------------------


def test_bulk_loaded_rows_are_those_iti42_writes(registry: Registry) -> None:
    subs = [sub for _, sub in data(patients=1).submissions(10, patient=PATIENT)]
    twins = copy.deepcopy(subs)
    for sub in subs:
        assert registry.register(sub) == []
    by_iti42 = rows(registry.store)
    with registry.engine.begin() as conn:
        for t in reversed(s.metadata.sorted_tables):
            if t is not s.patient:
                conn.execute(t.delete())
    report = load(registry, [(f"s{i}", sub) for i, sub in enumerate(twins)], patients="require")
    assert report.ok and report.submissions == 5 and report.document_entries == 10
    assert rows(registry.store) == by_iti42


def test_bulk_loaded_entries_are_found_by_find_documents(registry: Registry) -> None:
    gen = data(patients=2)
    subs = list(gen.submissions(40))
    report = load(registry, subs)
    assert report.ok, report.rejected
    assert report.batches == 5 and report.document_entries == 40
    for pid in {sub.submission_set.patient_id for _, sub in subs}:  # type: ignore[union-attr]
        mine = [sub for _, sub in subs if sub.submission_set.patient_id == pid]  # type: ignore[union-attr]
        assert find_documents(registry, pid) == set().union(*map(approved, mine))
        # code, eventCode (AND of ORs) and referenceIdList parameters match on the loaded columns
        de = mine[0].document_entries[1]
        modality, region = de.event_codes
        same_study = {d.entry_uuid for d in mine[0].document_entries}
        assert de.entry_uuid in find_documents(
            registry,
            pid,
            ("$XDSDocumentEntryClassCode", qs(code(de.class_code))),  # type: ignore[arg-type]
            ("$XDSDocumentEntryEventCodeList", qs(code(modality))),
            ("$XDSDocumentEntryEventCodeList", qs(code(region))),
        )
        answer = ask(
            registry.engine,
            "FindDocumentsByReferenceId",
            [
                ("$XDSDocumentEntryPatientId", q1(pid)),
                ("$XDSDocumentEntryStatus", APPROVED),
                ("$XDSDocumentEntryReferenceIdList", qs(de.reference_ids[0])),
            ],
        )
        assert answer.documents >= same_study


def test_bulk_load_with_worker_processes_gives_the_same_registry(registry: Registry) -> None:
    gen = data(patients=2, seed=11)
    assert load(registry, [(label, recipe()) for label, recipe in gen.recipes(16)]).ok
    in_process = rows(registry.store)
    with registry.engine.begin() as conn:
        for t in reversed(s.metadata.sorted_tables):
            conn.execute(t.delete())
    # the same studies, made, validated and serialised in a worker process
    loader = bl.BulkLoader(registry, patients="register", batch_size=4, workers=1)
    assert loader.load(gen.recipes(16), analyze_after=False).ok
    assert loader.fragments_reused == 8 * 5  # SubmissionSet, 2 DocumentEntries, 2 HasMember each
    assert rows(registry.store) == in_process


def test_find_documents_over_soap_sends_the_stored_fragments_as_they_are(registry: Registry) -> None:
    subs = list(data(patients=1, seed=13).submissions(12, patient=PATIENT))
    assert load(registry, subs).ok
    endpoint = Endpoint("registry", "/xds/registry")
    endpoint.add_operation(ACTION, RESPONSE_ACTION, iti18_handler(registry))
    client = TestClient(Starlette(routes=[Route("/xds/registry", endpoint, methods=["POST"])]))
    slots = [("$XDSDocumentEntryPatientId", q1(PATIENT)), ("$XDSDocumentEntryStatus", APPROVED)]
    request = adhoc_query_request("FindDocuments", slots)
    envelope = (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f'<wsa:Action env:mustUnderstand="true">{ACTION}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID></env:Header>"
        f"<env:Body>{etree.tostring(request).decode()}</env:Body></env:Envelope>"
    )
    r = client.post("/xds/registry", content=envelope, headers={"content-type": "application/soap+xml"})
    assert r.status_code == 200
    sent = etree.fromstring(r.content).find(f"{{{SOAP12}}}Body/{{{QUERY}}}AdhocQueryResponse")
    assert query_schema().validate(sent), query_schema().error_log
    built = stored_query(registry.engine, request, config=registry.settings)
    assert etree.tostring(sent, method="c14n", exclusive=True) == etree.tostring(
        built, method="c14n", exclusive=True
    )
    assert len(sent.find(f"{{{RIM}}}RegistryObjectList")) == 12


# --- the registry's checks still apply -------------------------------------------------------------


def test_unknown_patient_is_rejected_with_XDSUnknownPatientId_when_patients_are_required(
    registry: Registry,
) -> None:
    stranger = patient_id(42, AFFINITY_DOMAIN)
    known = data().study(PATIENT)
    report = load(
        registry, [("known", known), ("stranger", data(seed=8).study(stranger))], patients="require"
    )
    assert [r.source for r in report.rejected] == ["stranger"]
    assert [e.code for e in report.rejected[0].errors] == ["XDSUnknownPatientId"]
    assert find_documents(registry, PATIENT) == approved(known)
    assert registry.store.patient(stranger) is None


def test_unknown_patient_is_registered_and_flagged_when_asked(registry: Registry) -> None:
    stranger = patient_id(43, AFFINITY_DOMAIN)
    sub = data().study(stranger)
    report = load(registry, [("a", sub), ("b", data(seed=9).study(stranger))])
    assert report.ok and report.patients_registered == 1
    row = registry.store.patient(stranger)
    assert row is not None and row.source == bl.AUTO_REGISTERED_SOURCE
    assert approved(sub) <= find_documents(registry, stranger)
    # the identity feed takes the patient over: the flag goes
    registry.store.record_patient(stranger, {"family": "GAMMA"}, "PAT_IDENTITY_X_REF_MGR", "m9")
    assert registry.store.patient(stranger).source == "PAT_IDENTITY_X_REF_MGR"  # type: ignore[union-attr]


def test_patient_of_another_domain_is_not_registered(registry: Registry) -> None:
    foreign = "123^^^&1.2.3.4.5&ISO"
    report = load(registry, [("foreign", data().study(foreign))])
    assert {e.code for e in report.rejected[0].errors} == {"XDSUnknownPatientId"}
    assert registry.store.patient(foreign) is None


def test_merged_patient_is_rejected_even_when_registering_patients(registry: Registry) -> None:
    registry.store.merge_patient(PATIENT, OTHER_PATIENT)
    report = load(registry, [("merged", data().study(PATIENT))])
    assert [e.code for e in report.rejected[0].errors] == ["XDSUnknownPatientId"]


def test_catalogue_rejects_one_submission_and_the_batch_goes_on(registry: Registry) -> None:
    gen = data()
    good, bad, also_good = gen.study(PATIENT), gen.study(PATIENT), gen.study(PATIENT)
    bad.document_entries[0].hash = None
    report = load(registry, [("good", good), ("bad", bad), ("also", also_good)])
    assert [r.source for r in report.rejected] == ["bad"]
    assert {e.code for e in report.rejected[0].errors} == {"XDSRegistryMetadataError"}
    assert find_documents(registry, PATIENT) == approved(good) | approved(also_good)


def test_duplicate_submission_set_unique_id_in_one_batch_is_XDSDuplicateUniqueIdInRegistry(
    registry: Registry,
) -> None:
    gen = data()
    first, second = gen.study(PATIENT), gen.study(PATIENT)
    second.submission_set.unique_id = first.submission_set.unique_id  # type: ignore[union-attr]
    report = load(registry, [("first", first), ("second", second)])
    assert [r.source for r in report.rejected] == ["second"]
    assert [e.code for e in report.rejected[0].errors] == ["XDSDuplicateUniqueIdInRegistry"]
    assert find_documents(registry, PATIENT) == approved(first)


def test_document_unique_id_again_with_another_hash_is_XDSNonIdenticalHash(registry: Registry) -> None:
    gen = data()
    first, second, resubmitted = gen.study(PATIENT), gen.study(PATIENT), gen.study(PATIENT)
    assert registry.register(copy.deepcopy(first)) == []  # already in the registry
    second.document_entries[0].unique_id = first.document_entries[0].unique_id
    # the same document (uniqueId, hash, size) again is a resubmission, accepted (ITI TF-3 4.2.4.1)
    kos = resubmitted.document_entries[0]
    kos.unique_id, kos.hash, kos.size = (
        first.document_entries[0].unique_id,
        first.document_entries[0].hash,
        first.document_entries[0].size,
    )
    report = load(registry, [("second", second), ("again", resubmitted)])
    assert [r.source for r in report.rejected] == ["second"]
    assert [e.code for e in report.rejected[0].errors] == ["XDSNonIdenticalHash"]


def test_loading_the_same_submissions_twice_rejects_them_all(registry: Registry) -> None:
    subs = list(data().submissions(6, patient=PATIENT))
    assert load(registry, copy.deepcopy(subs)).ok
    report = load(registry, subs)
    assert report.submissions == 0 and len(report.rejected) == 3
    assert all("XDSRegistryMetadataError" in {e.code for e in r.errors} for r in report.rejected)
    assert registry.store.count(DOCUMENT_ENTRY) == 6


# --- submissions that refer to earlier ones --------------------------------------------------------


def test_replacement_in_the_same_batch_deprecates_the_original(registry: Registry) -> None:
    gen = data()
    original = gen.study(PATIENT)
    replacement = b.submission(b.document_entry("Doc2"))
    target = original.document_entries[1].entry_uuid
    replacement.associations.append(b.relationship(m.RPLC, "Doc2", target))
    report = load(registry, [("original", original), ("replacement", replacement)])
    assert report.ok, report.rejected
    found = find_documents(registry, PATIENT)
    assert target not in found and original.document_entries[0].entry_uuid in found
    assert replacement.document_entries[0].entry_uuid in found
    assert registry.store.document_entry(target).status == m.STATUS_DEPRECATED  # type: ignore[union-attr]


def test_document_added_to_a_folder_of_an_earlier_submission(registry: Registry) -> None:
    folder_sub = b.submission(folders=(b.folder(),))
    doc_sub = b.submission(b.document_entry())
    report = load(registry, [("folder", folder_sub)])
    assert report.ok, report.rejected
    folder = folder_sub.folders[0].entry_uuid
    doc_sub.associations.append(b.has_member(folder, "Document01", None))
    report = load(registry, [("doc", doc_sub)])
    assert report.ok, report.rejected
    answer = ask(
        registry.engine,
        "GetFolderAndContents",
        [("$XDSFolderEntryUUID", q1(folder))],
    )
    assert answer.documents == {doc_sub.document_entries[0].entry_uuid}


def test_a_batch_that_fails_in_the_database_is_registered_again_one_by_one(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = data()
    subs = [gen.study(PATIENT) for _ in range(3)]
    concurrent = b.submission(b.document_entry())
    concurrent.submission_set.unique_id = subs[1].submission_set.unique_id  # type: ignore[union-attr]
    assert registry.register(concurrent) == []
    read_ahead = bl.BatchTransaction.read_ahead

    def stale_read_ahead(self: bl.BatchTransaction, items: list) -> None:  # type: ignore[type-arg]
        # as if a concurrent ITI-42 had taken the uniqueId just after the read-ahead
        read_ahead(self, items)
        self._unique_ids[SUBMISSION_SET].discard(concurrent.submission_set.unique_id)  # type: ignore[union-attr]

    monkeypatch.setattr(bl.BatchTransaction, "read_ahead", stale_read_ahead)
    report = load(registry, [(f"s{i}", sub) for i, sub in enumerate(subs)], batch_size=10)
    assert report.retried_batches == 1
    assert [r.source for r in report.rejected] == ["s1"]
    assert [e.code for e in report.rejected[0].errors] == ["XDSDuplicateUniqueIdInRegistry"]
    assert find_documents(registry, PATIENT) == approved(subs[0]) | approved(subs[2]) | approved(concurrent)


# --- xds bulk-load ---------------------------------------------------------------------------------


def test_cli_loads_a_directory_and_reports_rejected_files(
    registry: Registry, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = tmp_path / "in"
    write_files(files / "batch1", data(seed=21).submissions(6, patient=PATIENT))
    (files / "broken.xml").write_text("<lcm:SubmitObjectsRequest")
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'[database]\nurl = "{db_url}"\n[registry]\npatient_assigning_authority = "{AFFINITY_DOMAIN}"\n'
        "[repository]\nenabled = false\n[imaging]\nenabled = false\n"
    )
    rc = cli.main(["bulk-load", "--config", str(conf), "--workers", "0", "--quiet", str(files)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "loaded 3 submissions (6 DocumentEntries" in out
    assert "broken.xml: XDSRegistryError" in err
    assert len(find_documents(registry, PATIENT)) == 6


def test_store_inserts_many_rows_in_statements_of_bounded_size(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xds.registry import rows as rows_mod

    monkeypatch.setattr(rows_mod, "_MAX_PARAMETERS", 3 * len(s.document_entry.columns))
    docs = [b.document_entry(f"Doc{i}") for i in range(7)]
    assert registry.register(b.submission(*docs)) == []
    assert find_documents(registry, PATIENT) == {d.entry_uuid for d in docs}
