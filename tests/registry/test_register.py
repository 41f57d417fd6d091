"""ITI-42 Register Document Set-b, registry side: one test per registry-state rule with its exact
error code, and the registry's lifecycle changes (ITI TF-2b 3.42.4.1.3, ITI TF-3 4.1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sqlalchemy import select

from tests.registry.builders import document_entry, folder, has_member, relationship, submission, urn
from tests.registry.conftest import OTHER_PATIENT, PATIENT
from xds.metadata import model as m
from xds.metadata.errors import RegistryError, has_errors
from xds.registry import Registry, schema
from xds.registry.register import default_reparser
from xds.registry.store import ASSOCIATION, DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET, RegistryStore

Register = Callable[..., list[RegistryError]]


@pytest.fixture
def register(registry: Registry) -> Register:
    """ITI-42 in process, stateless validation included; keyword arguments override settings."""

    def run(sub: m.Submission, **settings: object) -> list[RegistryError]:
        if settings:
            registry.settings = dataclasses.replace(registry.settings, **settings)
        return registry.register(sub)

    return run


def stored(fragment: str) -> m.RegistryObject:
    return default_reparser("", fragment)


def codes(errors: list[RegistryError]) -> list[str]:
    return [e.code for e in errors]


def accepted(register: Register, sub: m.Submission) -> m.Submission:
    errors = register(sub)
    assert not has_errors(errors), errors
    return sub


def status(store: RegistryStore, entry_uuid: str) -> str:
    row = store.document_entry(entry_uuid)
    assert row is not None
    return row.status


def counts(store: RegistryStore) -> tuple[int, ...]:
    return tuple(store.count(k) for k in (SUBMISSION_SET, DOCUMENT_ENTRY, FOLDER, ASSOCIATION))


# --- storing -------------------------------------------------------------------------------------


def test_register_stores_the_submission_with_symbolic_ids_replaced(
    register: Register, store: RegistryStore
) -> None:
    de = document_entry()
    sub = accepted(register, submission(de))
    assert de.entry_uuid.startswith("urn:uuid:") and sub.submission_set.entry_uuid.startswith("urn:uuid:")
    member = sub.associations[0]
    assert (member.source, member.target) == (sub.submission_set.entry_uuid, de.entry_uuid)
    row = store.document_entry(de.entry_uuid)
    assert row is not None
    assert (row.status, row.logical_id, row.version) == (m.STATUS_APPROVED, de.entry_uuid, 1)
    assert row.submission_set_uuid == sub.submission_set.entry_uuid
    assert counts(store) == (1, 1, 0, 1)
    assert store.association(member.entry_uuid).status == m.STATUS_APPROVED  # type: ignore[union-attr]


def test_register_keeps_submitted_uuids(register: Register, store: RegistryStore) -> None:
    given = urn()
    de = document_entry(given)
    accepted(register, submission(de))
    assert store.document_entry(given) is not None


def test_register_rejects_unknown_patient_with_XDSUnknownPatientId(
    register: Register, store: RegistryStore
) -> None:
    stranger = "999^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"
    errors = register(submission(document_entry(patient=stranger), patient=stranger))
    assert codes(errors) == ["XDSUnknownPatientId"]
    assert counts(store) == (0, 0, 0, 0)


def test_register_accepts_unknown_patient_when_configured(register: Register, store: RegistryStore) -> None:
    stranger = "999^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"
    errors = register(
        submission(document_entry(patient=stranger), patient=stranger), accept_unknown_patients=True
    )
    assert errors == []
    assert counts(store) == (1, 1, 0, 1)


def test_register_rejects_merged_away_patient_with_XDSUnknownPatientId(
    register: Register, store: RegistryStore
) -> None:
    store.merge_patient(OTHER_PATIENT, PATIENT)
    errors = register(submission(document_entry(patient=OTHER_PATIENT), patient=OTHER_PATIENT))
    assert codes(errors) == ["XDSUnknownPatientId"]


def test_register_rejects_reused_entry_uuid_with_XDSRegistryMetadataError(
    register: Register, store: RegistryStore
) -> None:
    given = urn()
    accepted(register, submission(document_entry(given)))
    errors = register(submission(document_entry(given)))
    assert codes(errors) == ["XDSRegistryMetadataError"]
    assert errors[0].location == given
    assert counts(store) == (1, 1, 0, 1)


def test_register_rejects_submission_set_unique_id_in_registry_with_XDSDuplicateUniqueIdInRegistry(
    register: Register,
) -> None:
    first = accepted(register, submission(document_entry()))
    again = submission(document_entry())
    again.submission_set.unique_id = first.submission_set.unique_id
    assert codes(register(again)) == ["XDSDuplicateUniqueIdInRegistry"]


def test_register_rejects_folder_unique_id_in_registry_with_XDSDuplicateUniqueIdInRegistry(
    register: Register,
) -> None:
    fol = folder()
    accepted(register, submission(folders=(fol,)))
    again = folder()
    again.unique_id = fol.unique_id
    assert codes(register(submission(folders=(again,)))) == ["XDSDuplicateUniqueIdInRegistry"]


def test_register_accepts_resubmission_of_an_identical_document(
    register: Register, store: RegistryStore
) -> None:
    """NIST 12004: same uniqueId, hash and size is the same document submitted again."""
    first = document_entry()
    accepted(register, submission(first))
    second = document_entry(unique_id=first.unique_id, hash=first.hash.upper())  # type: ignore[union-attr]
    accepted(register, submission(second))
    assert len(store.document_entries_by_unique_id(first.unique_id)) == 2


def test_register_rejects_same_unique_id_with_other_hash_with_XDSNonIdenticalHash(register: Register) -> None:
    first = document_entry()
    accepted(register, submission(first))
    other = document_entry(unique_id=first.unique_id, hash="0" * 40)
    assert codes(register(submission(other))) == ["XDSNonIdenticalHash"]


def test_register_rejects_same_unique_id_with_other_size_with_XDSNonIdenticalSize(register: Register) -> None:
    first = document_entry()
    accepted(register, submission(first))
    other = document_entry(unique_id=first.unique_id, size=37)
    assert codes(register(submission(other))) == ["XDSNonIdenticalSize"]


# --- replacement, addenda, transformations -------------------------------------------------------


@pytest.mark.parametrize("kind", [m.RPLC, m.XFRM_RPLC])
def test_replacement_deprecates_the_original(register: Register, store: RegistryStore, kind: str) -> None:
    original = document_entry()
    accepted(register, submission(original))
    new = document_entry("Document02")
    accepted(register, submission(new, associations=(relationship(kind, "Document02", original.entry_uuid),)))
    assert status(store, original.entry_uuid) == m.STATUS_DEPRECATED
    assert status(store, new.entry_uuid) == m.STATUS_APPROVED
    fragment = store.document_entry(original.entry_uuid).fragment  # type: ignore[union-attr]
    assert stored(fragment).status == m.STATUS_DEPRECATED


def test_replacement_deprecates_addenda_and_transformations_of_the_original(
    register: Register, store: RegistryStore
) -> None:
    """CP 117, NIST 12022: APND and XFRM documents hanging off a replaced document go with it."""
    original = document_entry()
    accepted(register, submission(original))
    addendum, transform = document_entry("Add"), document_entry("Xfrm")
    accepted(
        register,
        submission(
            addendum,
            transform,
            associations=(
                relationship(m.APND, "Add", original.entry_uuid),
                relationship(m.XFRM, "Xfrm", original.entry_uuid),
            ),
        ),
    )
    addendum_of_addendum = document_entry("Add2")
    accepted(
        register,
        submission(addendum_of_addendum, associations=(relationship(m.APND, "Add2", addendum.entry_uuid),)),
    )
    replacement = document_entry("New")
    accepted(
        register, submission(replacement, associations=(relationship(m.RPLC, "New", original.entry_uuid),))
    )
    for de in (original, addendum, transform, addendum_of_addendum):
        assert status(store, de.entry_uuid) == m.STATUS_DEPRECATED
    assert status(store, replacement.entry_uuid) == m.STATUS_APPROVED


@pytest.mark.parametrize("kind", [m.RPLC, m.XFRM_RPLC, m.APND, m.XFRM, m.SIGNS])
def test_relationship_to_deprecated_document_rejected_with_XDSRegistryDeprecatedDocumentError(
    register: Register, store: RegistryStore, kind: str
) -> None:
    original = document_entry()
    accepted(register, submission(original))
    accepted(
        register,
        submission(document_entry("R1"), associations=(relationship(m.RPLC, "R1", original.entry_uuid),)),
    )
    before = counts(store)
    errors = register(
        submission(document_entry("R2"), associations=(relationship(kind, "R2", original.entry_uuid),))
    )
    assert codes(errors) == ["XDSRegistryDeprecatedDocumentError"]
    assert counts(store) == before


@pytest.mark.parametrize("kind", [m.RPLC, m.APND, m.XFRM])
def test_relationship_to_other_patients_document_rejected_with_XDSPatientIdDoesNotMatch(
    register: Register, kind: str
) -> None:
    """NIST 11998: a replacement must be for the original's patient."""
    theirs = document_entry(patient=OTHER_PATIENT)
    accepted(register, submission(theirs, patient=OTHER_PATIENT))
    errors = register(
        submission(document_entry("Mine"), associations=(relationship(kind, "Mine", theirs.entry_uuid),))
    )
    assert codes(errors) == ["XDSPatientIdDoesNotMatch"]


def test_replacement_of_unknown_document_rejected_with_UnresolvedReferenceException(
    register: Register,
) -> None:
    errors = register(submission(document_entry(), associations=(relationship(m.RPLC, "Document01", urn()),)))
    assert codes(errors) == ["UnresolvedReferenceException"]


def test_replacement_target_in_the_same_submission_rejected_with_XDSRegistryMetadataError(
    register: Register,
) -> None:
    errors = register(
        submission(
            document_entry(),
            document_entry("Document02"),
            associations=(relationship(m.RPLC, "Document02", "Document01"),),
        )
    )
    assert codes(errors) == ["XDSRegistryMetadataError"]


def test_snapshot_of_a_stable_document_rejected_with_XDSRegistryMetadataError(register: Register) -> None:
    stable = document_entry()
    accepted(register, submission(stable))
    errors = register(
        submission(
            document_entry("Snap"), associations=(relationship(m.IS_SNAPSHOT_OF, "Snap", stable.entry_uuid),)
        )
    )
    assert codes(errors) == ["XDSRegistryMetadataError"]


def test_replacement_joins_the_folders_of_the_original(register: Register, store: RegistryStore) -> None:
    """NIST 12327 and 12323: the replacement becomes a member of the original's folders, whose
    lastUpdateTime changes."""
    original, fol = document_entry(), folder()
    accepted(
        register,
        submission(original, folders=(fol,), associations=(has_member("Folder01", "Document01", None),)),
    )
    with store.engine.begin() as conn:
        conn.execute(schema.folder.update().values(last_update_time="20000101000000"))
    replacement = document_entry("New")
    accepted(
        register, submission(replacement, associations=(relationship(m.RPLC, "New", original.entry_uuid),))
    )
    with store.reading() as r:
        members = r.associations_of(sources=[fol.entry_uuid], types=[m.HAS_MEMBER])
    assert {a.target_uuid for a in members} == {original.entry_uuid, replacement.entry_uuid}
    f = store.folder(fol.entry_uuid)
    assert f is not None and f.last_update_time > "20000101000000"  # type: ignore[operator]
    assert stored(f.fragment).last_update_time == f.last_update_time  # type: ignore[attr-defined]


# --- folders -------------------------------------------------------------------------------------


def test_folder_created_gets_last_update_time_from_the_registry(
    register: Register, store: RegistryStore
) -> None:
    fol = folder()
    fol.last_update_time = "19990101"
    accepted(register, submission(folders=(fol,)))
    row = store.folder(fol.entry_uuid)
    assert row is not None and row.last_update_time > "20200101000000"  # type: ignore[operator]
    assert row.status == m.STATUS_APPROVED


def test_adding_a_document_to_an_existing_folder_updates_its_last_update_time(
    register: Register, store: RegistryStore
) -> None:
    """NIST 12001: HasMember Folder->DocumentEntry, itself a member of the SubmissionSet."""
    fol = folder()
    accepted(register, submission(folders=(fol,)))
    with store.engine.begin() as conn:
        conn.execute(schema.folder.update().values(last_update_time="20000101000000"))
    de = document_entry()
    link = has_member(fol.entry_uuid, "Document01", None, symbol="FolAssoc")
    accepted(register, submission(de, associations=(link, has_member("SubmissionSet01", "FolAssoc", None))))
    assert store.folder(fol.entry_uuid).last_update_time > "20000101000000"  # type: ignore[operator,union-attr]
    with store.reading() as r:
        assert [a.target_uuid for a in r.associations_of(sources=[fol.entry_uuid])] == [de.entry_uuid]


def test_adding_a_document_to_another_patients_folder_rejected_with_XDSPatientIdDoesNotMatch(
    register: Register, store: RegistryStore
) -> None:
    """NIST 12002."""
    theirs = folder(patient=OTHER_PATIENT)
    accepted(register, submission(folders=(theirs,), patient=OTHER_PATIENT))
    link = has_member(theirs.entry_uuid, "Document01", None, symbol="FolAssoc")
    errors = register(
        submission(document_entry(), associations=(link, has_member("SubmissionSet01", "FolAssoc", None)))
    )
    assert "XDSPatientIdDoesNotMatch" in codes(errors)
    assert counts(store) == (1, 0, 1, 1)


def test_adding_an_existing_document_to_an_existing_folder(register: Register, store: RegistryStore) -> None:
    de, fol = document_entry(), folder()
    accepted(register, submission(de))
    accepted(register, submission(folders=(fol,)))
    link = has_member(fol.entry_uuid, de.entry_uuid, None, symbol="FolAssoc")
    accepted(register, submission(associations=(link, has_member("SubmissionSet01", "FolAssoc", None))))
    with store.reading() as r:
        assert [a.target_uuid for a in r.associations_of(sources=[fol.entry_uuid])] == [de.entry_uuid]


def test_association_to_unknown_folder_rejected_with_UnresolvedReferenceException(register: Register) -> None:
    link = has_member(urn(), "Document01", None, symbol="FolAssoc")
    errors = register(
        submission(document_entry(), associations=(link, has_member("SubmissionSet01", "FolAssoc", None)))
    )
    assert codes(errors) == ["UnresolvedReferenceException"]


def test_has_member_from_a_registered_submission_set_rejected_with_XDSRegistryMetadataError(
    register: Register,
) -> None:
    first = accepted(register, submission(document_entry()))
    errors = register(
        submission(
            document_entry(), associations=(has_member(first.submission_set.entry_uuid, "Document01"),)
        )
    )
    assert codes(errors) == ["XDSRegistryMetadataError"]


def test_submission_set_may_reference_a_registered_document(register: Register, store: RegistryStore) -> None:
    de = document_entry()
    accepted(register, submission(de))
    accepted(register, submission(associations=(has_member("SubmissionSet01", de.entry_uuid, "Reference"),)))
    assert counts(store) == (2, 1, 0, 2)


# --- extra metadata, atomicity -------------------------------------------------------------------


def test_extra_metadata_is_stored_by_default(register: Register, store: RegistryStore) -> None:
    de = document_entry(extra_slots={"urn:dir:accessionNumber": ["A1"]})
    assert register(submission(de)) == []
    obj = stored(store.document_entry(de.entry_uuid).fragment)  # type: ignore[union-attr]
    assert obj.extra_slots == {"urn:dir:accessionNumber": ["A1"]}


def test_extra_metadata_dropped_with_XDSExtraMetadataNotSaved_warning(
    register: Register, store: RegistryStore
) -> None:
    de = document_entry(extra_slots={"urn:dir:accessionNumber": ["A1"]})
    errors = register(submission(de), extra_metadata="reject")
    assert codes(errors) == ["XDSExtraMetadataNotSaved"]
    assert not has_errors(errors)
    obj = stored(store.document_entry(de.entry_uuid).fragment)  # type: ignore[union-attr]
    assert obj.extra_slots == {}


def test_a_submission_with_one_bad_part_writes_nothing(register: Register, store: RegistryStore) -> None:
    """ITI TF-2b 3.42.4.1.3: the submission is stored whole or not at all."""
    original = document_entry()
    accepted(register, submission(original))
    before = counts(store)
    errors = register(
        submission(
            document_entry("A"),
            document_entry("B"),
            folders=(folder(),),
            associations=(relationship(m.RPLC, "A", original.entry_uuid), relationship(m.APND, "B", urn())),
        )
    )
    assert codes(errors) == ["UnresolvedReferenceException"]
    assert counts(store) == before
    assert status(store, original.entry_uuid) == m.STATUS_APPROVED
    with store.engine.connect() as conn:
        assert conn.execute(select(schema.document_event_code)).all() == []
