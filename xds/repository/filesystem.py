"""Documents as files under one directory (the default store, DESIGN.md section 4).

Layout: ``<root>/<k0k1>/<k2k3>/<key>``; two levels of 256 directories keep directories small at
millions of documents. A write goes to a hidden temporary file in the final directory, is fsynced,
renamed over the final name (atomic on POSIX) and the directory is fsynced, so after a crash a key
names either nothing or the complete document. The keys this store hands out
(:meth:`FilesystemStore.new_key`) take their first four hex digits, the two directory levels, from
the clock (one leaf directory per second, the 65,536 of them in turn every 18 hours) and the other
28 from a random UUID: a new repository creates (and fsyncs the parent of) one directory per second
of submissions instead of one per document, and over time the documents still spread evenly. Left-over temporary files are removed by
:meth:`FilesystemStore.purge_incomplete` at start-up. A key space (:meth:`FilesystemStore.key_space`)
is a subdirectory ``<root>/<name>`` laid out the same way; its name is never two characters long,
so the parent's scans, which only enter the two-character levels, never see its files.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from xds.repository.store import (
    CHUNK,
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

TMP_SUFFIX = ".tmp"


def _fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStore(DocumentStore):
    name = "filesystem"

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.fsync = fsync
        self._dir_lock = threading.Lock()
        self._dirs: set[str] = set()  # leaf directories known to exist (no stat per document)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)

    def new_key(self) -> str:
        return f"{int(time.time()) & 0xFFFF:04x}{uuid.uuid4().hex[4:]}"

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[0:2] / key[2:4] / key

    def _ensure_dir(self, directory: str) -> None:
        if os.path.isdir(directory):
            self._dirs.add(directory)
            return
        with self._dir_lock:
            # create level by level so each new entry's parent can be fsynced
            for d in (os.path.dirname(directory), directory):
                if not os.path.isdir(d):
                    try:
                        os.mkdir(d)
                    except FileExistsError:  # another process's
                        pass
                    if self.fsync:
                        _fsync_dir(Path(d).parent)
            self._dirs.add(directory)

    def _create_temp(self, directory: str, key: str) -> tuple[int, str]:
        """A new temporary file for ``key`` in ``directory`` (created and its parent fsynced if
        missing): ``.<key>.tmp``, or a mkstemp name if that one exists."""
        if directory not in self._dirs:
            self._ensure_dir(directory)
        tmp = os.path.join(directory, f".{key}{TMP_SUFFIX}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileNotFoundError:  # the directory went away since it was cached
            self._dirs.discard(directory)
            self._ensure_dir(directory)
        except FileExistsError:
            pass
        return tempfile.mkstemp(prefix=f".{key}.", suffix=TMP_SUFFIX, dir=directory)

    def put(self, stream: BinaryIO, key: str | None = None, size_hint: int | None = None) -> StoredObject:
        key = check_key(key or self.new_key())
        directory = os.path.join(self._root, key[0:2], key[2:4])
        final = os.path.join(directory, key)
        try:
            fd, tmp = self._create_temp(directory, key)
        except OSError as e:
            raise StoreError(f"cannot create a file in the document store: {e.strerror}") from None
        reader = HashingReader(stream)
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                for block in reader.chunks(CHUNK):
                    view = memoryview(block)
                    while view:
                        view = view[out.write(view) :]
                if self.fsync:
                    os.fsync(out.fileno())
            os.replace(tmp, final)
            if self.fsync:
                _fsync_dir(directory)
        except BaseException as e:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            if isinstance(e, OSError):
                full = e.errno in (errno.ENOSPC, errno.EDQUOT)
                raise StoreError(f"cannot write to the document store: {e.strerror}", full) from None
            raise
        return StoredObject(key, reader.size, reader.sha1)

    def opener(self, key: str) -> Callable[[], BinaryIO]:
        path = self.path(key)
        if not path.is_file():
            raise DocumentNotFound(key)

        def open_document() -> BinaryIO:
            try:
                return open(path, "rb")
            except FileNotFoundError:
                raise DocumentNotFound(key) from None

        return open_document

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            pass

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def _files(self) -> Iterator[os.DirEntry[str]]:
        for level1 in os.scandir(self.root):
            if not (level1.is_dir() and len(level1.name) == 2):
                continue
            for level2 in os.scandir(level1.path):
                if not (level2.is_dir() and len(level2.name) == 2):
                    continue
                yield from (e for e in os.scandir(level2.path) if e.is_file())

    def list(self) -> Iterator[StoreEntry]:
        for entry in self._files():
            if entry.name.startswith("."):
                continue
            try:
                check_key(entry.name)
                st = entry.stat()
            except (ValueError, FileNotFoundError):
                continue
            yield StoreEntry(entry.name, st.st_size, st.st_mtime)

    def purge_incomplete(self, older_than: float) -> int:
        removed = 0
        for entry in self._files():
            if not (entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX)):
                continue
            try:
                if entry.stat().st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def key_space(self, name: str) -> FilesystemStore:
        return FilesystemStore(self.root / check_key_space(name), fsync=self.fsync)

    def __repr__(self) -> str:
        return f"FilesystemStore({str(self.root)!r})"
