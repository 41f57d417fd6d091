"""ITI-41 Provide and Register Document Set-b on /xds/repository (ITI TF-2b 3.41.4.1.3), through the
node's HTTP app: MTOM/XOP and inline base64, hash/size computed and checked, documents matched to
DocumentEntries, stored before registration and removed when registration fails."""

from __future__ import annotations

import hashlib

from tests.repository.conftest import node_config, serve, stored_not_registered
from tests.repository.messages import (
    PATIENT,
    REPOSITORY_ID,
    document_entry,
    provide_and_register,
    submission,
)
from xds.config import IdentityConfig, IdentityFeedConfig
from xds.repository.index import PENDING, REGISTERED

CONTENT = b"This is my document.\n\nIt is great!\n"
SHA1 = hashlib.sha1(CONTENT).hexdigest()


def stored_objects(node) -> list[str]:
    return sorted(e.key for e in node.repository.store.list())


def registered(node, unique_id: str):
    return node.registry.store.document_entries_by_unique_id(unique_id)


def test_mtom_document_is_stored_then_registered_with_hash_size_and_repository_id(dir_node):
    de = document_entry()
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert (out.short_status, out.errors) == ("Success", [])
    [row] = registered(dir_node, de.unique_id)
    assert (row.hash, row.size, row.repository_unique_id) == (SHA1, len(CONTENT), REPOSITORY_ID)
    indexed = dir_node.repository.index.get(de.unique_id)
    assert (indexed.state, indexed.mime_type, indexed.hash, indexed.size) == (REGISTERED, "text/plain", SHA1, len(CONTENT))
    assert dir_node.repository.store.open(indexed.storage_key).read() == CONTENT


def test_inline_base64_document_without_mtom(dir_node):
    de = document_entry()
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}, mtom=False))
    assert (out.short_status, out.errors, out.mtom) == ("Success", [], False)
    assert registered(dir_node, de.unique_id)[0].hash == SHA1


def test_two_documents_in_one_submission(dir_node):
    d1, d2 = document_entry("Document01"), document_entry("Document02", mime_type="application/pdf")
    out = dir_node.post(provide_and_register(submission(d1, d2), {"Document01": CONTENT, "Document02": b"%PDF-1.4 two"}))
    assert out.short_status == "Success", out.errors
    assert registered(dir_node, d2.unique_id)[0].size == len(b"%PDF-1.4 two")
    assert dir_node.repository.index.get(d2.unique_id).mime_type == "application/pdf"
    assert len(stored_objects(dir_node)) == 2


def test_hash_and_size_sent_by_the_source_are_accepted_when_right_even_in_upper_case(dir_node):
    # NIST 11981 submit / submit_uppercase_hash
    de = document_entry(hash=SHA1.upper(), size=len(CONTENT))
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert out.short_status == "Success", out.errors
    assert registered(dir_node, de.unique_id)[0].hash == SHA1


def test_wrong_hash_in_metadata_is_XDSRepositoryMetadataError_and_nothing_is_kept(dir_node):
    # NIST 11981 submit_bad_hash, 12369 hash
    de = document_entry(hash="0" * 40)
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert out.short_status == "Failure"
    assert out.codes == ["XDSRepositoryMetadataError"]
    assert registered(dir_node, de.unique_id) == []
    assert stored_objects(dir_node) == []
    assert dir_node.repository.index.get(de.unique_id) is None


def test_wrong_size_in_metadata_is_XDSRepositoryMetadataError(dir_node):
    # NIST 11981 submit_bad_size, 12369 size
    de = document_entry(size=len(CONTENT) + 1)
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert (out.short_status, out.codes) == ("Failure", ["XDSRepositoryMetadataError"])
    assert stored_objects(dir_node) == []


def test_document_entry_without_document_is_XDSMissingDocument(dir_node):
    # NIST 11983 submit_no_doc
    d1, d2 = document_entry("Document01"), document_entry("Document02")
    out = dir_node.post(provide_and_register(submission(d1, d2), {"Document01": CONTENT}))
    assert out.short_status == "Failure"
    assert ("XDSMissingDocument", "Error", "Document02") in out.errors
    assert stored_objects(dir_node) == []
    assert registered(dir_node, d1.unique_id) == []


def test_document_without_document_entry_is_XDSMissingDocumentMetadata(dir_node):
    # NIST 11983 submit_no_metadata
    de = document_entry("Document01")
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT, "Document02": b"stray"}))
    assert out.short_status == "Failure"
    assert ("XDSMissingDocumentMetadata", "Error", "Document02") in out.errors
    assert stored_objects(dir_node) == []


def test_same_unique_id_twice_in_the_request_is_XDSRepositoryDuplicateUniqueIdInMessage(dir_node):
    d1 = document_entry("Document01")
    d2 = document_entry("Document02", unique_id=d1.unique_id)
    out = dir_node.post(provide_and_register(submission(d1, d2), {"Document01": CONTENT, "Document02": CONTENT}))
    assert out.short_status == "Failure"
    assert "XDSRepositoryDuplicateUniqueIdInMessage" in out.codes
    assert stored_objects(dir_node) == []


def test_identical_resubmission_is_accepted_and_stored_once(dir_node):
    de = document_entry()
    assert dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT})).short_status == "Success"
    again = document_entry(unique_id=de.unique_id)
    out = dir_node.post(provide_and_register(submission(again), {"Document01": CONTENT}))
    assert out.short_status == "Success", out.errors
    assert len(stored_objects(dir_node)) == 1


def test_same_unique_id_with_other_content_is_XDSNonIdenticalHash(dir_node):
    de = document_entry()
    assert dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT})).short_status == "Success"
    before = stored_objects(dir_node)
    other = document_entry(unique_id=de.unique_id)
    out = dir_node.post(provide_and_register(submission(other), {"Document01": b"something else"}))
    assert (out.short_status, out.codes) == ("Failure", ["XDSNonIdenticalHash"])
    assert stored_objects(dir_node) == before
    indexed = dir_node.repository.index.get(de.unique_id)
    assert dir_node.repository.store.open(indexed.storage_key).read() == CONTENT
    assert len(registered(dir_node, de.unique_id)) == 1


def test_registry_error_comes_back_and_the_stored_document_is_removed(dir_node):
    stranger = "zz9999^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"  # never fed
    de = document_entry(patient=stranger)
    out = dir_node.post(provide_and_register(submission(de, patient=stranger), {"Document01": CONTENT}))
    assert (out.short_status, out.codes) == ("Failure", ["XDSUnknownPatientId"])
    assert stored_objects(dir_node) == []
    assert dir_node.repository.index.count() == 0


def test_a_document_gone_from_the_index_while_registering_is_not_registered(dir_node):
    # the index rows become registered in the registration's own transaction: a row that vanished
    # meanwhile (a reconciliation took the document for an orphan) fails the registration whole
    repo = dir_node.repository
    de = document_entry()
    put = repo.store.put

    def put_then_lose_the_row(stream, key=None, size_hint=None):
        stored = put(stream, key, size_hint)
        repo.index.remove([de.unique_id])
        return stored

    repo.store.put = put_then_lose_the_row
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert (out.short_status, out.codes) == ("Failure", ["XDSRepositoryError"])
    assert registered(dir_node, de.unique_id) == []
    assert stored_objects(dir_node) == [] and repo.index.count() == 0


def test_a_submission_held_for_its_patients_adt_keeps_its_document_as_registered(tmp_path):
    hospital = "2.16.840.1.113883.3.239.18.101"
    cfg = node_config(tmp_path / "node")
    cfg.identity = IdentityConfig(feeds=[IdentityFeedConfig(name="hospa-adt", sending_facility="HOSPA",
                                                            issuer="HOSPA", issuer_oid=hospital)])
    local = f"MRN1^^^&{hospital}&ISO"  # no ADT has linked a health number to it yet
    with serve(cfg) as node:
        de = document_entry(patient=local)
        out = node.post(provide_and_register(submission(de, patient=local), {"Document01": CONTENT}))
        assert (out.short_status, out.codes) == ("Success", ["DocumentQueued"])
        indexed = node.repository.index.get(de.unique_id)
        assert (indexed.state, indexed.hash, indexed.size) == (REGISTERED, SHA1, len(CONTENT))
        assert node.repository.reconcile().orphans == []


def test_metadata_naming_another_repository_is_XDSRepositoryMetadataError(dir_node):
    de = document_entry(repository_unique_id="1.2.3.4.5.6.7")
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert (out.short_status, out.codes) == ("Failure", ["XDSRepositoryMetadataError"])
    assert stored_objects(dir_node) == []


def test_invalid_metadata_is_refused_before_anything_is_stored(dir_node):
    de = document_entry(class_code=None)
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert out.short_status == "Failure"
    assert set(out.codes) == {"XDSRepositoryMetadataError"}
    assert stored_objects(dir_node) == [] and dir_node.repository.index.count() == 0


def test_rad68_document_that_is_not_a_kos_is_rejected_with_XDSRepositoryMetadataError(dir_node):
    # real KOS manifests are accepted: tests/imaging/test_rad68.py replays the NIST ones through ITI-41
    kos = b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + b"\0" * 40
    de = document_entry(mime_type="application/dicom",
                        format_code=m_code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "KOS"))
    out = dir_node.post(provide_and_register(submission(de), {"Document01": kos}))
    assert out.short_status == "Failure"
    assert [e[0] for e in out.errors] == ["XDSRepositoryMetadataError"]
    assert dir_node.repository.index.get(de.unique_id) is None


def m_code(code: str, scheme: str, name: str):
    from xds.metadata.model import Code

    return Code(code, scheme, name)


def test_remote_registry_over_iti42(tmp_path):
    """A repository-only node registering with another node's registry over SOAP."""
    with serve(node_config(tmp_path / "registry-node", enabled=False)) as registry_node:
        registry_node.feed(PATIENT)
        cfg = node_config(tmp_path / "repository-node", registry_url="http://testserver/xds/registry")
        cfg.registry.enabled = False
        from xds.repository import Repository
        from xds.repository.registry_client import RemoteRegistry

        repo = Repository.from_config(cfg)
        repo.registry = RemoteRegistry("http://testserver/xds/registry", client=registry_node.client)
        try:
            from xds.repository.provide import Provide

            de = document_entry()
            errors = Provide(repo, submission(de), {"Document01": _attachment(CONTENT)}).run()
            assert errors == []
            [row] = registered(registry_node, de.unique_id)
            assert (row.hash, row.repository_unique_id) == (SHA1, REPOSITORY_ID)
            assert repo.index.get(de.unique_id).registered
            assert repo.registry.lookup([de.unique_id])[de.unique_id][0].hash == SHA1

            stranger = "zz9999^^^&1.3.6.1.4.1.21367.2005.13.20.1000&ISO"
            bad = document_entry(patient=stranger)
            errors = Provide(repo, submission(bad, patient=stranger), {"Document01": _attachment(b"x")}).run()
            assert [e.code for e in errors] == ["XDSUnknownPatientId"]
            assert repo.index.get(bad.unique_id) is None
            assert len(list(repo.store.list())) == 1
        finally:
            repo.close()


def _attachment(data: bytes):
    from xds.soap.message import Attachment

    return Attachment(data=data)


class LostAnswer:
    """A registry whose ITI-42 answer never arrives (``committed``: it did register)."""

    def __init__(self, real, committed: bool, lookup_works: bool = True) -> None:
        self.real, self.committed, self.lookup_works = real, committed, lookup_works

    def register(self, sub):
        from xds.repository.registry_client import RegistryUnavailable

        if self.committed:
            assert self.real.register(sub) == []
        raise RegistryUnavailable("read timeout", maybe_received=True)

    def lookup(self, unique_ids):
        from xds.repository.registry_client import RegistryUnavailable

        if not self.lookup_works:
            raise RegistryUnavailable("down")
        return self.real.lookup(unique_ids)

    def close(self):
        pass


def test_unreachable_registry_is_XDSRegistryNotAvailable_and_the_document_is_removed(dir_node):
    repo = dir_node.repository
    repo.registry = LostAnswer(repo.registry, committed=False)
    de = document_entry()
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert (out.short_status, out.codes) == ("Failure", ["XDSRegistryNotAvailable"])
    assert stored_objects(dir_node) == [] and repo.index.count() == 0


def test_lost_registry_answer_after_a_registration_is_a_success(dir_node):
    repo = dir_node.repository
    repo.registry = LostAnswer(repo.registry, committed=True)
    de = document_entry()
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert out.short_status == "Success", out.errors
    assert repo.index.get(de.unique_id).state == REGISTERED


def test_lost_registry_answer_that_cannot_be_checked_leaves_the_document_to_reconciliation(dir_node):
    repo = dir_node.repository
    local = repo.registry
    repo.registry = LostAnswer(local, committed=True, lookup_works=False)
    de = document_entry()
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert out.codes == ["XDSRegistryNotAvailable"]
    assert repo.index.get(de.unique_id).state == PENDING
    repo.registry = local
    assert repo.reconcile().confirmed == [de.unique_id]


def test_xop_include_of_a_missing_part_is_a_sender_fault(dir_node):
    req = provide_and_register(submission(document_entry()), {"Document01": CONTENT})
    cid = req.parts[0][0]
    body = req.body.replace(f"Content-ID: <{cid}>".encode(), b"Content-ID: <elsewhere@test>")
    r = dir_node.client.post("/xds/repository", content=body, headers={"content-type": req.content_type})
    assert r.status_code == 400 and b"Sender" in r.content and b"does not contain" in r.content
    assert stored_objects(dir_node) == []


def test_invalid_base64_is_a_sender_fault(dir_node):
    req = provide_and_register(submission(document_entry()), {"Document01": CONTENT}, mtom=False)
    body = req.body.replace(b'id="Document01">', b'id="Document01">%%%not base64')
    r = dir_node.client.post("/xds/repository", content=body, headers={"content-type": req.content_type})
    assert r.status_code == 400 and b"base64" in r.content
    assert stored_objects(dir_node) == []


def test_resubmission_while_the_first_is_still_pending_is_XDSRepositoryBusy(dir_node):
    repo = dir_node.repository
    de = document_entry()
    stored_not_registered(repo, de.unique_id, CONTENT)  # another request is between store and register
    out = dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT}))
    assert (out.short_status, out.codes) == ("Failure", ["XDSRepositoryBusy"])
    assert repo.index.get(de.unique_id).state == PENDING and len(stored_objects(dir_node)) == 1


def test_resubmission_after_a_lost_answer_confirms_the_pending_document(dir_node):
    repo = dir_node.repository
    local = repo.registry
    repo.registry = LostAnswer(local, committed=True, lookup_works=False)
    de = document_entry()
    assert dir_node.post(provide_and_register(submission(de), {"Document01": CONTENT})).codes == ["XDSRegistryNotAvailable"]
    repo.registry = local
    again = document_entry(unique_id=de.unique_id)
    out = dir_node.post(provide_and_register(submission(again), {"Document01": CONTENT}))
    assert out.short_status == "Success", out.errors
    assert repo.index.get(de.unique_id).state == REGISTERED and len(stored_objects(dir_node)) == 1
