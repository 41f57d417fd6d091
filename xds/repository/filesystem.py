"""Documents as files under one directory (the default store, DESIGN.md section 4).

Layout: ``<root>/<k0k1>/<k2k3>/<key>``; two levels of 256 directories keep directories small at
millions of documents. A write goes to a hidden temporary file in the final directory, is fsynced,
renamed over the final name (atomic on POSIX) and the directory is fsynced, so after a crash a key
names either nothing or the complete document. Left-over temporary files are removed by
:meth:`FilesystemStore.purge_incomplete` at start-up. A key space (:meth:`FilesystemStore.key_space`)
is a subdirectory ``<root>/<name>`` laid out the same way; its name is never two characters long,
so the parent's scans, which only enter the two-character levels, never see its files.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
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


def _fsync_dir(path: Path) -> None:
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
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[0:2] / key[2:4] / key

    def _ensure_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        with self._dir_lock:
            # create level by level so each new entry's parent can be fsynced
            for d in (directory.parent, directory):
                if not d.is_dir():
                    d.mkdir(exist_ok=True)
                    if self.fsync:
                        _fsync_dir(d.parent)

    def put(self, stream: BinaryIO, key: str | None = None, size_hint: int | None = None) -> StoredObject:
        key = key or new_key()
        final = self.path(key)
        try:
            self._ensure_dir(final.parent)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=TMP_SUFFIX, dir=final.parent)
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
                _fsync_dir(final.parent)
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
