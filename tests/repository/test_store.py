"""The document stores: streaming put with size and SHA-1, atomic visibility, opener, delete, list,
and clean-up of interrupted writes. The S3 store runs against a real SeaweedFS server."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

from xds.repository.filesystem import FilesystemStore
from xds.repository.s3 import MIB, S3Store
from xds.repository.store import DocumentNotFound, DocumentStore, StoreError, new_key


class Chunked(io.RawIOBase):
    """A non-seekable stream yielding ``total`` pseudo-random bytes in short reads."""

    def __init__(self, total: int, seed: int = 1) -> None:
        self.remaining = total
        self.offset = 0
        self.block = hashlib.sha256(str(seed).encode()).digest() * 4096  # 128 KiB pattern

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        n = min(self.remaining, 50_000 if n < 0 else min(n, 50_000))
        self.remaining -= n
        start = self.offset % 65536
        self.offset += n
        return self.block[start : start + n]


def expected_digest(total: int, seed: int = 1) -> str:
    h = hashlib.sha1()
    src = Chunked(total, seed)
    while block := src.read(1 << 20):
        h.update(block)
    return h.hexdigest()


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path) -> DocumentStore:
    if request.param == "filesystem":
        s: DocumentStore = FilesystemStore(tmp_path / "docs")
    else:
        s = S3Store(**request.getfixturevalue("s3_settings"), part_size=5 * MIB)
    yield s
    s.close()


def test_put_computes_size_and_sha1_while_streaming(store: DocumentStore) -> None:
    content = b"This is my document.\n\nIt is great!\n"
    stored = store.put(io.BytesIO(content))
    assert stored.size == len(content)
    assert stored.sha1 == hashlib.sha1(content).hexdigest()
    assert stored.sha1 == stored.sha1.lower()
    with store.open(stored.key) as f:
        assert f.read() == content


def test_empty_document(store: DocumentStore) -> None:
    stored = store.put(io.BytesIO(b""))
    assert (stored.size, stored.sha1) == (0, hashlib.sha1(b"").hexdigest())
    assert store.open(stored.key).read() == b""


def test_large_document_in_parts(store: DocumentStore) -> None:
    total = 12 * MIB + 12345  # three S3 parts of 5 MiB, the last short
    stored = store.put(Chunked(total), size_hint=total)
    assert stored.size == total
    assert stored.sha1 == expected_digest(total)
    h = hashlib.sha1()
    opener = store.opener(stored.key)
    with opener() as f:
        while block := f.read(1 << 20):
            h.update(block)
    assert h.hexdigest() == stored.sha1
    # the opener gives a fresh reader each time
    with opener() as f:
        assert len(f.read(10)) == 10


def test_put_under_a_chosen_key_and_delete(store: DocumentStore) -> None:
    key = new_key()
    assert not store.exists(key)
    store.put(io.BytesIO(b"abc"), key)
    assert store.exists(key)
    assert {e.key for e in store.list()} == {key}
    store.delete(key)
    store.delete(key)  # idempotent
    assert not store.exists(key)
    assert list(store.list()) == []


def test_missing_document_is_DocumentNotFound(store: DocumentStore) -> None:
    with pytest.raises(DocumentNotFound):
        store.opener(new_key())()


def test_invalid_keys_are_refused(store: DocumentStore) -> None:
    with pytest.raises(ValueError):
        store.put(io.BytesIO(b"x"), "../../etc/passwd")


class Failing(io.RawIOBase):
    def __init__(self, good: int) -> None:
        self.good = good

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.good <= 0:
            raise OSError("client went away")
        n = min(self.good, 1 << 20 if n < 0 else n)
        self.good -= n
        return b"\0" * n


def test_failed_upload_leaves_nothing_behind(store: DocumentStore) -> None:
    key = new_key()
    with pytest.raises((OSError, StoreError)):
        store.put(Failing(11 * MIB), key)
    assert not store.exists(key)
    assert list(store.list()) == []
    assert store.purge_incomplete(time.time() + 60) == 0


def test_filesystem_write_is_atomic_and_temporaries_are_purged(tmp_path) -> None:
    store = FilesystemStore(tmp_path / "docs")
    stored = store.put(io.BytesIO(b"final"))
    final = store.path(stored.key)
    # what a crash mid-write leaves: a hidden temporary next to where the document would go
    tmp = final.parent / f".{new_key()}.abc123.tmp"
    tmp.write_bytes(b"partial")
    assert [e.key for e in store.list()] == [stored.key]
    assert store.purge_incomplete(time.time() - 3600) == 0  # too recent
    assert store.purge_incomplete(time.time() + 1) == 1
    assert not tmp.exists()
    assert final.read_bytes() == b"final"
    assert not any(p.name.endswith(".tmp") for p in final.parent.iterdir())
    assert oct(os.stat(final).st_mode & 0o777) == "0o600"


def test_filesystem_keys_share_a_directory_per_second_and_stale_temporaries_do_not_block(tmp_path) -> None:
    store = FilesystemStore(tmp_path / "docs")
    keys = [store.new_key() for _ in range(50)]
    assert len(set(keys)) == 50
    assert len({k[:4] for k in keys}) <= 2  # the clock's second (two if it ticked meanwhile)
    # a temporary a crash left under the very name the next write would take
    key = keys[0]
    store.path(key).parent.mkdir(parents=True)
    (store.path(key).parent / f".{key}.tmp").write_bytes(b"partial")
    stored = store.put(io.BytesIO(b"whole"), key)
    assert store.open(stored.key).read() == b"whole"
    assert store.purge_incomplete(time.time() + 1) == 1
    # a directory removed behind the store's back is created again
    lone = "ffff" + new_key()[4:] if key[:4] != "ffff" else "0000" + new_key()[4:]
    store.put(io.BytesIO(b"x"), lone)
    os.unlink(store.path(lone))
    os.rmdir(store.path(lone).parent)
    assert store.put(io.BytesIO(b"again"), lone[:4] + new_key()[4:]).size == 5


def test_s3_interrupted_multipart_upload_is_aborted_by_purge(s3_settings) -> None:
    store = S3Store(**s3_settings, part_size=5 * MIB)
    name = store.object_name(new_key())
    upload = store.client.create_multipart_upload(Bucket=store.bucket, Key=name)
    store.client.upload_part(Bucket=store.bucket, Key=name, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * (5 * MIB))
    assert store.purge_incomplete(time.time() - 3600) == 0
    assert store.purge_incomplete(time.time() + 60) == 1
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert uploads == []
    assert list(store.list()) == []
    store.close()


def test_a_key_space_is_apart_from_its_parent_store(store: DocumentStore) -> None:
    images = store.key_space("imaging")
    doc = store.put(io.BytesIO(b"a document"))
    instance = images.put(io.BytesIO(b"an instance"))
    assert [e.key for e in store.list()] == [doc.key]
    assert [e.key for e in images.list()] == [instance.key]
    assert not store.exists(instance.key) and not images.exists(doc.key)
    with images.open(instance.key) as f:
        assert f.read() == b"an instance"
    store.delete(instance.key)  # not the parent's to delete
    assert images.exists(instance.key)
    images.close()


def test_the_parent_store_purges_only_its_own_interrupted_writes(store: DocumentStore) -> None:
    images = store.key_space("imaging")
    if isinstance(images, S3Store):
        name = images.object_name(new_key())
        images.client.create_multipart_upload(Bucket=images.bucket, Key=name)
    else:
        assert isinstance(images, FilesystemStore)
        kept = images.put(io.BytesIO(b"x")).key
        (images.path(kept).parent / f".{new_key()}.abc.tmp").write_bytes(b"partial")
    assert store.purge_incomplete(time.time() + 60) == 0
    assert images.purge_incomplete(time.time() + 60) == 1
    images.close()


@pytest.mark.parametrize("name", ["ab", "Imaging", "9lives", "a/b", "0123456789abcdef0123456789abcdef"])
def test_a_key_space_name_can_never_be_taken_for_a_key_or_a_directory_level(tmp_path, name: str) -> None:
    with pytest.raises(ValueError):
        FilesystemStore(tmp_path / "docs").key_space(name)
