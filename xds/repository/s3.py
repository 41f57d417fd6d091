"""Documents as objects in an S3-compatible bucket (boto3; DESIGN.md section 4).

Small documents go up in one PutObject; larger ones in a multipart upload whose parts are read
from the stream one after the other (hashing them in order) and sent by a few threads, so memory
stays at ``(concurrency + 1) * part_size`` whatever the document's size. S3 makes an object
visible only when its PutObject or CompleteMultipartUpload succeeds, which gives the same atomicity
as the filesystem store's rename; an upload interrupted by a crash stays an unfinished multipart
upload, aborted by :meth:`S3Store.purge_incomplete` at start-up. A key space
(:meth:`S3Store.key_space`) is the object-name prefix ``<prefix><name>/`` in the same bucket; the
parent store lists with the delimiter ``/`` and aborts only uploads of its own keys, so it never
sees or touches the objects of a key space.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from xds.repository.store import (
    DocumentNotFound,
    DocumentStore,
    HashingReader,
    StoredObject,
    StoreEntry,
    StoreError,
    check_key,
    check_key_space,
    new_key,
)

MIB = 1024 * 1024
MIN_PART = 8 * MIB  # S3 requires >= 5 MiB for every part but the last
MAX_PARTS = 10_000


def _read_full(stream: Any, n: int) -> bytes:
    """Read exactly ``n`` bytes unless the stream ends first."""
    first = stream.read(n)
    if len(first) == n or not first:
        return first
    pieces = [first]
    got = len(first)
    while got < n:
        block = stream.read(n - got)
        if not block:
            break
        pieces.append(block)
        got += len(block)
    return b"".join(pieces)


def _not_found(error: Any) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class S3Store(DocumentStore):
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        part_size: int = MIN_PART,
        concurrency: int = 4,
        create_bucket: bool = True,
        client: Any = None,
    ) -> None:
        if part_size < 5 * MIB:
            raise ValueError("S3 multipart parts are at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.concurrency = max(1, concurrency)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url or None,
                region_name=region,
                aws_access_key_id=access_key or None,
                aws_secret_access_key=secret_key or None,
                config=Config(
                    s3={"addressing_style": "path"} if endpoint_url else {},
                    retries={"max_attempts": 4, "mode": "standard"},
                    connect_timeout=10,
                    read_timeout=120,
                    max_pool_connections=max(10, 4 * self.concurrency),
                    # S3-compatible servers differ in their support of the newer default checksums
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )
        self.client = client
        from botocore.exceptions import BotoCoreError, ClientError

        self._client_error = ClientError
        self._errors: tuple[type[BaseException], ...] = (ClientError, BotoCoreError)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="xds-s3")
        self._closed = threading.Event()
        if create_bucket:
            self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self._client_error as e:
            if not _not_found(e):
                raise StoreError(f"S3 bucket {self.bucket!r} is not usable: {e}") from None
            self.client.create_bucket(Bucket=self.bucket)

    def object_name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _part_size_for(self, size_hint: int | None) -> int:
        if size_hint and size_hint > self.part_size * (MAX_PARTS - 1):
            return -(-size_hint // (MAX_PARTS - 1))
        return self.part_size

    def put(self, stream: BinaryIO, key: str | None = None, size_hint: int | None = None) -> StoredObject:
        key = key or new_key()
        name = self.object_name(key)
        reader = HashingReader(stream)
        part_size = self._part_size_for(size_hint)
        first = _read_full(reader, part_size)
        try:
            if len(first) < part_size:
                self.client.put_object(Bucket=self.bucket, Key=name, Body=first)
            else:
                self._multipart(name, reader, first, part_size)
        except self._errors as e:
            raise StoreError(f"cannot write to S3 bucket {self.bucket!r}: {e}") from None
        return StoredObject(key, reader.size, reader.sha1)

    def _multipart(self, name: str, reader: HashingReader, first: bytes, part_size: int) -> None:
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
        try:
            in_flight: deque[Future[dict[str, Any]]] = deque()
            parts: list[dict[str, Any]] = []
            number = 1
            block = first
            while block:
                in_flight.append(self._pool.submit(self._upload_part, name, upload_id, number, block))
                del block
                if len(in_flight) >= self.concurrency:
                    parts.append(in_flight.popleft().result())
                number += 1
                block = _read_full(reader, part_size)
            while in_flight:
                parts.append(in_flight.popleft().result())
            if number - 1 > MAX_PARTS:
                raise StoreError("the document is too large for one S3 multipart upload")
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            for f in in_flight:
                f.cancel()
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            except self._errors:
                pass  # purge_incomplete will abort it
            raise

    def _upload_part(self, name: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        r = self.client.upload_part(Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": r["ETag"]}

    def opener(self, key: str) -> Callable[[], BinaryIO]:
        name = self.object_name(key)

        def open_document() -> BinaryIO:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
            except self._client_error as e:
                if _not_found(e):
                    raise DocumentNotFound(key) from None
                raise StoreError(f"cannot read from S3 bucket {self.bucket!r}: {e}") from None

        return open_document

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))
        except self._client_error as e:
            if not _not_found(e):
                raise StoreError(f"cannot delete from S3 bucket {self.bucket!r}: {e}") from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
            return True
        except self._client_error as e:
            if _not_found(e):
                return False
            raise StoreError(f"cannot read from S3 bucket {self.bucket!r}: {e}") from None

    def key_space(self, name: str) -> S3Store:
        return S3Store(bucket=self.bucket, prefix=f"{self.prefix}{check_key_space(name)}/", part_size=self.part_size,
                       concurrency=self.concurrency, create_bucket=False, client=self.client)

    def _own(self, name: str) -> bool:
        try:
            check_key(name[len(self.prefix) :])
            return name.startswith(self.prefix)
        except ValueError:
            return False

    def list(self) -> Iterator[StoreEntry]:
        paginator = self.client.get_paginator("list_objects_v2")
        # the delimiter leaves the key spaces' objects (``<prefix><name>/<key>``) out of the listing
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(self.prefix) :]
                try:
                    check_key(key)
                except ValueError:
                    continue
                yield StoreEntry(key, int(obj["Size"]), obj["LastModified"].timestamp())

    def purge_incomplete(self, older_than: float) -> int:
        removed = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() >= older_than or not self._own(upload["Key"]):
                    continue
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
                except self._client_error as e:
                    if not _not_found(e):
                        raise
        return removed

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._pool.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"
