"""Where the Document Repository keeps document bytes (DESIGN.md section 4).

A :class:`DocumentStore` holds opaque objects under keys the repository chooses. ``put`` streams
a document in once, computing its size and SHA-1 on the way (ITI TF-3 4.2.3.2.12/4.2.3.2.19: the
repository, not the source, is the authority for hash and size); ``opener`` hands back a callable
that opens a fresh reader, so an ITI-43 response streams the bytes without holding them. Objects
appear atomically: a reader never sees a partly written document under its key.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1024 * 1024

_KEY = re.compile(r"^[0-9a-f]{32}$")
_KEY_SPACE = re.compile(r"^[a-z][a-z0-9-]{2,31}$")


class DocumentNotFound(KeyError):
    """No object under this key."""


class StoreError(Exception):
    """The store could not complete an operation (I/O error, S3 error). ``out_of_space``: the
    disk or quota is full (reported as XDSRepositoryOutOfResources)."""

    def __init__(self, message: str, out_of_space: bool = False) -> None:
        super().__init__(message)
        self.out_of_space = out_of_space


@dataclass(frozen=True)
class StoredObject:
    """What ``put`` learnt while streaming: size in bytes and SHA-1 as lower-case hex."""

    key: str
    size: int
    sha1: str


@dataclass(frozen=True)
class StoreEntry:
    """One object found by ``list`` (for reconciliation). ``modified`` is a POSIX timestamp."""

    key: str
    size: int
    modified: float


def new_key() -> str:
    """A fresh storage key. Keys are random, never derived from content: two DocumentEntries with
    identical bytes must not share an object that deleting one of them would take from the other."""
    return uuid.uuid4().hex


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError("a storage key is 32 lower-case hex digits")
    return key


def check_key_space(name: str) -> str:
    """A key space is named by 3-32 lower-case letters, digits and hyphens (never a key)."""
    if not _KEY_SPACE.match(name):
        raise ValueError("a key space name is 3-32 lower-case letters, digits or hyphens, starting with a letter")
    return name


class HashingReader:
    """Wraps a binary stream; counts and SHA-1-hashes every byte read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._sha1 = hashlib.sha1()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        block = self._stream.read(n)
        if block:
            self._sha1.update(block)
            self.size += len(block)
        return block

    def chunks(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        while True:
            block = self.read(chunk_size)
            if not block:
                return
            yield block

    @property
    def sha1(self) -> str:
        return self._sha1.hexdigest()


def digest(stream: BinaryIO, chunk_size: int = CHUNK) -> tuple[int, str]:
    """(size, SHA-1 hex) of a stream read to its end, without storing it."""
    reader = HashingReader(stream)
    for _ in reader.chunks(chunk_size):
        pass
    return reader.size, reader.sha1


class DocumentStore(ABC):
    """The interface every backend implements. All methods are thread-safe and synchronous
    (handlers run in Starlette's thread pool)."""

    name: str = ""

    @abstractmethod
    def put(self, stream: BinaryIO, key: str | None = None, size_hint: int | None = None) -> StoredObject:
        """Store everything ``stream`` yields under ``key`` (a fresh key when None).

        The object is visible under its key only once complete and durable. An existing object
        under ``key`` is replaced. Raises :class:`StoreError`; nothing is left behind on error.
        """

    def new_key(self) -> str:
        """A fresh storage key for a document about to be put (:func:`new_key`; a store may lay
        its keys out to suit its backend)."""
        return new_key()

    @abstractmethod
    def opener(self, key: str) -> Callable[[], BinaryIO]:
        """A callable opening a new reader on the object each time it is called.

        Raises :class:`DocumentNotFound` now if the store can tell cheaply that the object is gone.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing an absent object is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self) -> Iterator[StoreEntry]:
        """Every complete object, in no particular order."""

    @abstractmethod
    def purge_incomplete(self, older_than: float) -> int:
        """Remove what interrupted writes left behind (temporary files, unfinished multipart
        uploads) started before the POSIX time ``older_than``. Returns how many were removed."""

    @abstractmethod
    def key_space(self, name: str) -> DocumentStore:
        """A store on the same backend (same directory tree, same bucket) whose keys are apart from
        this one's: its objects are never in this store's ``list`` nor removed by its
        ``purge_incomplete``, so each store's reconciliation sees only its own objects. The
        Imaging Document Source keeps its DICOM instances in the key space ``imaging``."""

    def open(self, key: str) -> BinaryIO:
        return self.opener(key)()

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
