"""RegistryStore: typed writes and reads on SQLite and PostgreSQL, the ITI-8 sink, migrations."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests.registry.conftest import PATIENT
from xds.metadata.model import (
    APND,
    HAS_MEMBER,
    STATUS_APPROVED,
    STATUS_DEPRECATED,
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    SubmissionSet,
)
from xds.registry import schema
from xds.registry.db import create_registry_engine, current_revision, migrate
from xds.registry.store import DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET, RegistryStore


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def document_entry(**kw: object) -> DocumentEntry:
    de = DocumentEntry(
        entry_uuid=urn(),
        unique_id=f"1.2.3.{uuid.uuid4().int % 10**12}",
        patient_id=PATIENT,
        mime_type="text/plain",
        class_code=Code("DEMO-Consult", "1.3.6.1.4.1.21367.100.1"),
        type_code=Code("34108-1", "2.16.840.1.113883.6.1"),
        format_code=Code("urn:ihe:rad:TEXT", "1.2.840.10008.2.6.1"),
        healthcare_facility_type_code=Code("Outpatient", "Connect-a-thon healthcareFacilityTypeCodes"),
        practice_setting_code=Code("General Medicine", "Connect-a-thon practiceSettingCodes"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25")],
        event_codes=[Code("T-D4909", "SNM3"), Code("T-62002", "SNM3")],
        authors=[Author(person="^Smitty^Gerald^^^", institutions=["Cleveland Clinic"], roles=["Attending"])],
        creation_time="2004",
        service_start_time="200412230800",
        service_stop_time="200412230801",
        hash="DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
        size=1234,
        repository_unique_id="1.19.6.24.109.42.1.5",
        reference_ids=["A1234^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:accession"],
    )
    for k, v in kw.items():
        setattr(de, k, v)
    return de


def test_migrations_reach_head_and_are_idempotent(engine) -> None:
    migrate(engine)
    from xds.registry.db import head_revision

    assert current_revision(engine) == head_revision()


def test_record_patient_upserts_the_identity_feed(store: RegistryStore) -> None:
    assert not store.patient_known(PATIENT)
    store.record_patient(PATIENT, {"family": "ALPHA"}, "MESA|XYZ", "m1")
    store.record_patient(PATIENT, {"family": "ALPHA", "given": "ALAN"}, "MESA|XYZ", "m2")
    assert store.patient_known(PATIENT)
    row = store.patient(PATIENT)
    assert row is not None
    assert row.demographics == {"family": "ALPHA", "given": "ALAN"}
    assert row.message_control_id == "m2"
    assert row.merged_into is None


def test_merge_patient_marks_the_prior_id(store: RegistryStore) -> None:
    store.record_patient("old^^^&1.2&ISO", {}, "s", "m1")
    store.merge_patient("old^^^&1.2&ISO", PATIENT, "m9")
    assert store.patient("old^^^&1.2&ISO").merged_into == PATIENT  # type: ignore[union-attr]


def test_document_entry_round_trip_with_children(store: RegistryStore) -> None:
    de = document_entry()
    ss = SubmissionSet(
        entry_uuid=urn(),
        unique_id="1.2.9",
        source_id="1.2.10",
        patient_id=PATIENT,
        submission_time="20041225235050",
        authors=[Author(person="^Dopplemeyer^Sherry")],
        content_type_code=Code("Communication", "Connect-a-thon contentTypeCodes"),
    )
    with store.transaction() as tx:
        tx.add_submission_set(ss, "<RegistryPackage/>")
        tx.add_document_entry(de, "<ExtrinsicObject/>", ss.entry_uuid)
    row = store.document_entry(de.entry_uuid)
    assert row is not None
    assert row.status == STATUS_APPROVED
    assert row.logical_id == de.entry_uuid and row.version == 1
    assert row.hash == "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert row.size == 1234
    assert row.submission_set_uuid == ss.entry_uuid
    assert row.fragment == "<ExtrinsicObject/>"
    with store.engine.connect() as conn:
        t = schema.document_entry
        times = conn.execute(
            select(t.c.creation_time, t.c.service_start_time, t.c.class_code, t.c.class_code_scheme)
        ).one()
        assert tuple(times) == ("20040101000000", "20041223080000", "DEMO-Consult", "1.3.6.1.4.1.21367.100.1")
        events = (
            conn.execute(
                select(schema.document_event_code.c.code).order_by(schema.document_event_code.c.position)
            )
            .scalars()
            .all()
        )
        assert events == ["T-D4909", "T-62002"]
        assert conn.execute(select(schema.document_author.c.person)).scalar() == "^Smitty^Gerald^^^"
        ref = conn.execute(select(schema.document_reference_id)).one()
        assert (ref.id, ref.id_type) == ("A1234", "urn:ihe:iti:xds:2013:accession")
        ss_row = conn.execute(select(schema.submission_set.c.submission_time)).scalar()
        assert ss_row == "20041225235050"
    assert store.count(DOCUMENT_ENTRY) == 1 and store.count(SUBMISSION_SET) == 1


def test_a_failed_transaction_writes_nothing(store: RegistryStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.add_document_entry(document_entry(), "<x/>")
        raise RuntimeError("boom")
    assert store.count(DOCUMENT_ENTRY) == 0


def test_object_kinds_finds_each_table_in_one_statement(store: RegistryStore) -> None:
    de, fol = document_entry(), Folder(entry_uuid=urn(), unique_id="1.2.77", patient_id=PATIENT)
    assoc = Association(
        entry_uuid=urn(), association_type=HAS_MEMBER, source=fol.entry_uuid, target=de.entry_uuid
    )
    with store.transaction() as tx:
        tx.add_document_entry(de, "<x/>")
        tx.add_folder(fol, "<f/>")
        tx.add_association(assoc, "<a/>")
    with store.reading() as r:
        kinds = r.object_kinds([de.entry_uuid, fol.entry_uuid, assoc.entry_uuid, urn()])
        assert kinds == {
            de.entry_uuid: DOCUMENT_ENTRY,
            fol.entry_uuid: FOLDER,
            assoc.entry_uuid: "Association",
        }
        assert [a.entry_uuid for a in r.associations_of(targets=[de.entry_uuid], types=[HAS_MEMBER])] == [
            assoc.entry_uuid
        ]
        assert r.associations_of(targets=[de.entry_uuid], types=[APND]) == []
        assert r.existing_unique_ids(FOLDER, ["1.2.77", "1.2.78"]) == {"1.2.77"}


def test_set_status_and_folder_last_update_time_rewrite_the_fragment(store: RegistryStore) -> None:
    de = document_entry()
    fol = Folder(entry_uuid=urn(), unique_id="1.2.79", patient_id=PATIENT, last_update_time="20040101")
    with store.transaction() as tx:
        tx.add_document_entry(de, "<approved/>")
        tx.add_folder(fol, "<old/>")
    with store.transaction() as tx:
        tx.set_status(DOCUMENT_ENTRY, de.entry_uuid, STATUS_DEPRECATED, "<deprecated/>")
        tx.set_folder_last_update_time(fol.entry_uuid, "20250102030405", "<new/>")
    row = store.document_entry(de.entry_uuid)
    assert (row.status, row.fragment) == (STATUS_DEPRECATED, "<deprecated/>")  # type: ignore[union-attr]
    f = store.folder(fol.entry_uuid)
    assert (f.last_update_time, f.fragment) == ("20250102030405", "<new/>")  # type: ignore[union-attr]


def test_identical_unique_ids_may_coexist_as_separate_entries(store: RegistryStore) -> None:
    first = document_entry()
    second = document_entry(unique_id=first.unique_id)
    with store.transaction() as tx:
        tx.add_document_entries([(first, "<a/>"), (second, "<b/>")], None)
    assert {r.entry_uuid for r in store.document_entries_by_unique_id(first.unique_id)} == {
        first.entry_uuid,
        second.entry_uuid,
    }


def test_sqlite_engine_uses_wal_foreign_keys_and_busy_timeout(tmp_path) -> None:
    engine = create_registry_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_postgresql_url_defaults_to_psycopg() -> None:
    engine = create_registry_engine("postgresql://postgres@127.0.0.1:5432/postgres")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()
