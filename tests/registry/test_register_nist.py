"""ITI-42 with real NIST XDS Toolkit metadata (ebRIM 3.0 submissions of the Repository acceptance
tests 1111-1113 and registry test 12051), registered in process the way the repository of this
node registers a Provide and Register: hash, size and repositoryUniqueId filled in first."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from lxml import etree

from tests.registry.builders import nist_metadata
from tests.registry.conftest import NIST, node_config
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.metadata.errors import has_errors
from xds.registry import Registry
from xds.registry.store import ASSOCIATION, DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET, RegistryStore

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
PATIENTS = (f"P1005125143.2^^^&{DOMAIN}&ISO", f"P0924175725.3^^^&{DOMAIN}&ISO")
REPOSITORY = "1.19.6.24.109.42.1.5"


@pytest.fixture
def nist_registry(store: RegistryStore) -> Registry:
    for pid in PATIENTS:
        store.record_patient(pid, {}, "NIST^PIF", "1")
    return Registry(store, node_config(patient_assigning_authority=DOMAIN).registry)


def provide(
    registry: Registry,
    section: str,
    patient: str | None = PATIENTS[0],
    expect: str | None = None,
    **placeholders: str,
) -> dict[str, str]:
    """Register one section's metadata for ``patient`` (None: the file's own); returns symbolic
    id -> entryUUID. With ``expect``, the registration must fail with that code alone."""
    path = next(p for p in (NIST / section).glob("*.xml") if p.name != "testplan.xml")
    sub = ebrim.parse_submit_objects_request(etree.fromstring(nist_metadata(path, patient, **placeholders)))
    symbols = {o.entry_uuid: o for o in sub.objects()}
    for de in sub.document_entries:
        content = _document(path.parent, de.entry_uuid)
        de.hash, de.size, de.repository_unique_id = (
            hashlib.sha1(content).hexdigest(),
            len(content),
            REPOSITORY,
        )
    errors = registry.register(sub)
    if expect is not None:
        assert [e.code for e in errors] == [expect]
    else:
        assert not has_errors(errors), errors
    return {symbol: obj.entry_uuid for symbol, obj in symbols.items()}


def _document(directory: Path, symbol: str) -> bytes:
    for line in (directory / "testplan.xml").read_text().splitlines():
        if f'<Document id="{symbol}">' in line:
            return (directory / line.split(">")[1].split("<")[0]).read_bytes()
    return b"document"


def counts(store: RegistryStore) -> tuple[int, ...]:
    return tuple(store.count(k) for k in (SUBMISSION_SET, DOCUMENT_ENTRY, FOLDER, ASSOCIATION))


def test_nist_1111_submit_then_replace(nist_registry: Registry, store: RegistryStore) -> None:
    first = provide(nist_registry, "ReposAcceptanceTest-1111/SubmitSingleDoc")
    second = provide(
        nist_registry, "ReposAcceptanceTest-1111/SubmitRplc", original_doc_uuid=first["myDocId1"]
    )
    assert store.document_entry(first["myDocId1"]).status == m.STATUS_DEPRECATED  # type: ignore[union-attr]
    assert store.document_entry(second["myDocId1"]).status == m.STATUS_APPROVED  # type: ignore[union-attr]


def test_nist_1112_append_then_transform_and_replace_the_addendum(
    nist_registry: Registry, store: RegistryStore
) -> None:
    original = provide(nist_registry, "ReposAcceptanceTest-1112/SubmitSingleDoc")["myDocId1"]
    addendum = provide(nist_registry, "ReposAcceptanceTest-1112/SubmitApnd", original_doc_uuid=original)[
        "myDocId1"
    ]
    xfrm = provide(nist_registry, "ReposAcceptanceTest-1112/SubmitXfrmRplc", apnd_doc_uuid=addendum)[
        "myDocId1"
    ]
    status = {u: store.document_entry(u).status for u in (original, addendum, xfrm)}  # type: ignore[union-attr]
    assert status == {original: m.STATUS_APPROVED, addendum: m.STATUS_DEPRECATED, xfrm: m.STATUS_APPROVED}


def test_nist_1113_folders_new_and_existing_documents(nist_registry: Registry, store: RegistryStore) -> None:
    two = provide(nist_registry, "ReposAcceptanceTest-1113/SubmitTwoDocs")
    fol = provide(nist_registry, "ReposAcceptanceTest-1113/SubmitFolder")
    folder_uuid = next(u for s, u in fol.items() if store.folder(u) is not None)
    stamped = store.folder(folder_uuid).last_update_time  # type: ignore[union-attr]
    provide(nist_registry, "ReposAcceptanceTest-1113/SubmitFolderwDoc")
    new = provide(
        nist_registry, "ReposAcceptanceTest-1113/AssociateNewDEwithExistingFolder", fol_uuid=folder_uuid
    )
    provide(
        nist_registry,
        "ReposAcceptanceTest-1113/AssociateExistingDEwithExistingFolder",
        fol_uuid=folder_uuid,
        doc1_uuid=two["myDocId1"],
    )
    with store.reading() as r:
        members = {a.target_uuid for a in r.associations_of(sources=[folder_uuid], types=[m.HAS_MEMBER])}
    assert new["myDocId1"] in members
    assert len(members) == 2
    assert store.folder(folder_uuid).last_update_time >= stamped  # type: ignore[operator,union-attr]


def test_nist_12051_registered_fragment_round_trips(nist_registry: Registry, store: RegistryStore) -> None:
    nist_registry.settings.patient_assigning_authority = "1.3.6.1.4.1.21367.2005.3.7"
    store.record_patient("SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO", {}, "NIST", "1")
    root = etree.fromstring(nist_metadata(NIST / "12051" / "submit" / "single_doc.xml"))
    errors = nist_registry.register(root)
    assert errors == []
    with store.engine.connect() as conn:
        from xds.registry import schema

        fragment = conn.execute(schema.document_entry.select()).one().fragment
    de = ebrim.parse_registry_object(etree.fromstring(fragment))
    assert isinstance(de, m.DocumentEntry)
    assert de.status == m.STATUS_APPROVED and de.entry_uuid.startswith("urn:uuid:")
    assert de.patient_id == "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
    assert counts(store) == (1, 1, 0, 1)


def test_nist_1113_as_shipped_puts_another_patients_document_in_the_folder(
    nist_registry: Registry, store: RegistryStore
) -> None:
    """The 1113 files carry two patients (the toolkit normally overrides them): adding the
    SubmitTwoDocs document to the SubmitFolder folder is then rejected with XDSPatientIdDoesNotMatch."""
    two = provide(nist_registry, "ReposAcceptanceTest-1113/SubmitTwoDocs", patient=None)
    fol = provide(nist_registry, "ReposAcceptanceTest-1113/SubmitFolder", patient=None)
    folder_uuid = next(u for u in fol.values() if store.folder(u) is not None)
    before = counts(store)
    provide(
        nist_registry,
        "ReposAcceptanceTest-1113/AssociateExistingDEwithExistingFolder",
        patient=None,
        expect="XDSPatientIdDoesNotMatch",
        fol_uuid=folder_uuid,
        doc1_uuid=two["myDocId1"],
    )
    assert counts(store) == before
