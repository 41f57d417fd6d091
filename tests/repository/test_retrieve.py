"""ITI-43 Retrieve Document Set on /xds/repository (ITI TF-2b 3.43.4): MTOM response with the
documents streamed from the store, per-document errors, PartialSuccess, homeCommunityId echoed."""

from __future__ import annotations

import pytest

from tests.repository.messages import (
    HOME,
    REPOSITORY_ID,
    document_entry,
    provide_and_register,
    retrieve_document_set,
    submission,
)

DOC1 = b"This is my document.\n\nIt is great!\n"
DOC2 = b"This is my second document.\n"


@pytest.fixture
def two_documents(dir_node):
    d1 = document_entry("Document01")
    d2 = document_entry("Document02", mime_type="text/xml")
    out = dir_node.post(provide_and_register(submission(d1, d2), {"Document01": DOC1, "Document02": b"<x>" + DOC2 + b"</x>"}))
    assert out.short_status == "Success", out.errors
    return d1.unique_id, d2.unique_id


def test_retrieve_two_documents(dir_node, two_documents):
    # NIST 12021 retrieve_double
    u1, u2 = two_documents
    out = dir_node.post(retrieve_document_set((REPOSITORY_ID, u1), (REPOSITORY_ID, u2)))
    assert out.mtom
    assert (out.short_status, out.errors) == ("Success", [])
    docs = out.documents()
    assert [(d["unique_id"], d["repository"], d["mime_type"], d["content"]) for d in docs] == [
        (u1, REPOSITORY_ID, "text/plain", DOC1),
        (u2, REPOSITORY_ID, "text/xml", b"<x>" + DOC2 + b"</x>"),
    ]
    assert all(d["home"] is None for d in docs)


def test_retrieve_echoes_home_community_id(dir_node, two_documents):
    out = dir_node.post(retrieve_document_set((REPOSITORY_ID, two_documents[0], HOME)))
    assert out.short_status == "Success"
    [doc] = out.documents()
    assert (doc["home"], doc["content"]) == (HOME, DOC1)


def test_unknown_document_among_known_ones_is_PartialSuccess_with_XDSDocumentUniqueIdError(dir_node, two_documents):
    out = dir_node.post(retrieve_document_set((REPOSITORY_ID, two_documents[0]), (REPOSITORY_ID, "1.2.3.4.999")))
    assert out.short_status == "PartialSuccess"
    assert out.errors == [("XDSDocumentUniqueIdError", "Error", "1.2.3.4.999")]
    assert [d["content"] for d in out.documents()] == [DOC1]


def test_only_unknown_documents_is_Failure(dir_node, two_documents):
    out = dir_node.post(retrieve_document_set((REPOSITORY_ID, "1.2.3.4.998"), (REPOSITORY_ID, "1.2.3.4.999")))
    assert out.mtom  # ITI-43 responses are always MTOM
    assert out.short_status == "Failure"
    assert out.codes == ["XDSDocumentUniqueIdError", "XDSDocumentUniqueIdError"]
    assert out.documents() == []


def test_another_repository_is_XDSUnknownRepositoryId(dir_node, two_documents):
    out = dir_node.post(retrieve_document_set(("1.2.3.4.5", two_documents[0]), (REPOSITORY_ID, two_documents[1])))
    assert out.short_status == "PartialSuccess"
    assert out.errors == [("XDSUnknownRepositoryId", "Error", two_documents[0])]
    assert len(out.documents()) == 1


def test_a_pending_document_is_not_retrievable(dir_node):
    from xds.repository.store import new_key

    key = new_key()
    dir_node.repository.index.claim("1.2.3.4.777", key, "text/plain")
    out = dir_node.post(retrieve_document_set((REPOSITORY_ID, "1.2.3.4.777")))
    assert out.codes == ["XDSDocumentUniqueIdError"]


def test_retrieve_does_not_depend_on_the_registry(dir_node, two_documents):
    """The repository answers from its own index: mimeType and bytes survive the registry being gone."""
    dir_node.repository.registry = None
    out = dir_node.post(retrieve_document_set((REPOSITORY_ID, two_documents[1])))
    assert [(d["mime_type"], d["content"]) for d in out.documents()] == [("text/xml", b"<x>" + DOC2 + b"</x>")]


def test_provide_and_retrieve_with_the_s3_store(tmp_path, s3_settings):
    """The same transactions over S3 (SeaweedFS); 12 MiB goes up as a multipart upload."""
    from tests.repository.conftest import node_config, serve
    from tests.repository.messages import PATIENT

    cfg = node_config(tmp_path / "node", store="s3", s3_endpoint=s3_settings["endpoint_url"],
                      s3_bucket=s3_settings["bucket"], s3_access_key=s3_settings["access_key"],
                      s3_secret_key=s3_settings["secret_key"])
    big = bytes(range(256)) * (12 * 4096 + 17)
    with serve(cfg) as node:
        node.feed(PATIENT)
        d1, d2 = document_entry("Document01"), document_entry("Document02", mime_type="application/octet-stream")
        out = node.post(provide_and_register(submission(d1, d2), {"Document01": DOC1, "Document02": big}))
        assert out.short_status == "Success", out.errors
        out = node.post(retrieve_document_set((REPOSITORY_ID, d2.unique_id), (REPOSITORY_ID, d1.unique_id)))
        assert [d["content"] for d in out.documents()] == [big, DOC1]


def test_document_whose_object_vanished_is_XDSDocumentUniqueIdError(dir_node, two_documents):
    repo = dir_node.repository
    repo.store.delete(repo.index.get(two_documents[0]).storage_key)
    out = dir_node.post(retrieve_document_set((REPOSITORY_ID, two_documents[0]), (REPOSITORY_ID, two_documents[1])))
    assert out.short_status == "PartialSuccess"
    assert out.errors == [("XDSDocumentUniqueIdError", "Error", two_documents[0])]
