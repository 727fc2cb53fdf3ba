"""A :class:`~latent_graph.persist.blobs.BlobStore` in a folder, one file per blob: the default store.

Atomic writes, safe across processes (a ``flock`` per shard), and it never follows a link out of its root: every
file is opened relative to its parent directory's descriptor with ``O_NOFOLLOW``, and a link, hard link or special
file anywhere under the root is refused (:class:`~latent_graph.errors.BlobStoreError`).
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import re
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from latent_graph.errors import BlobStoreError
from latent_graph.paths import cache_dir
from latent_graph.persist.blobs import KEY_PATTERN, check_key

__all__ = ["FolderBlobStore", "default_blob_folder"]


def default_blob_folder() -> Path:
    """``<cache dir>/handles``: where :class:`FolderBlobStore` keeps blobs by default."""
    return cache_dir() / "handles"


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a planted FIFO cannot hang a read
_SHARD = re.compile(r"^[0-9a-f]{2}$")


def _refused(what: str, exc: OSError | None = None) -> BlobStoreError:
    return BlobStoreError(
        f"{what}: a folder blob store holds only plain directories and files under its root (a link could make it "
        f"read or write outside the root); remove it{f' ({exc.strerror})' if exc is not None else ''}"
    )


class FolderBlobStore:
    """A :class:`BlobStore` in a folder: ``<root>/<key[:2]>/<key>``, written atomically (temp file + rename).

    Nothing under the root is reached through a path that could follow a link: every shard
    directory and blob is opened relative to its parent's descriptor (``openat``) with
    ``O_NOFOLLOW``, and a symlink, hard link, FIFO or other special file where a shard, blob or
    lock file belongs raises :class:`~latent_graph.errors.BlobStoreError` before anything is read
    or written (a planted symlinked shard cannot make ``put`` write outside the root). ``keys``
    refuses a symlink anywhere in the root or a shard. POSIX only (``openat``, ``flock``).

    A blob's age is its file's mtime; ``put`` of a present blob refreshes it (``futimens``). Refreshing
    and ``delete``'s check-mtime-then-unlink both hold the shard's lock (``flock`` on
    ``<root>/<key[:2]>/.lock``: across threads and processes), so a refresh lands either before the
    check (the blob is kept) or after the unlink (then ``put`` finds no file and writes it anew).
    Writing a new blob needs no lock: its temp file is renamed into place with a fresh mtime, and an
    absent file is nothing ``delete`` could drop. Readers take no lock and never see a blob that is
    not collected go missing, not even for a moment.

    Args:
        root: The folder (created); :func:`default_blob_folder` when None. Links in the path up to
            the root are resolved once, here.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root if root is not None else default_blob_folder()).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _open_root(self) -> int:
        try:
            return os.open(self.root, _DIR)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _refused(f"the blob store root {str(self.root)!r} is no longer a directory", exc) from exc
            raise

    @staticmethod
    def _open_dir(parent: int, name: str, where: str) -> int | None:
        """``name`` under the directory ``parent``, opened as a directory without following a link; None if absent."""
        try:
            return os.open(name, _DIR, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _refused(f"{where}/{name} is a link or not a directory", exc) from exc
            raise

    @contextmanager
    def _shard(self, key: str, create: bool = False) -> Iterator[int | None]:
        """A descriptor of ``key``'s shard directory (made when ``create``), None when it is absent."""
        root = self._open_root()
        try:
            if create:
                try:
                    os.mkdir(key[:2], 0o755, dir_fd=root)
                except FileExistsError:
                    pass
            shard = self._open_dir(root, key[:2], str(self.root))
        finally:
            os.close(root)
        try:
            yield shard
        finally:
            if shard is not None:
                os.close(shard)

    def _where(self, key: str) -> str:
        return f"{self.root}/{key[:2]}/{key}"

    def _checked(self, st: os.stat_result, what: str) -> os.stat_result:
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise _refused(f"{what} is a link or not a plain file")
        return st

    def _stat(self, shard: int, key: str) -> os.stat_result | None:
        """The blob file's stat (the file itself, not a link's target), None if absent."""
        try:
            st = os.stat(key, dir_fd=shard, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return self._checked(st, self._where(key))

    def _open_blob(self, shard: int, key: str) -> int | None:
        """The blob file opened for reading without following a link, None if absent."""
        try:
            fd = os.open(key, _FILE, dir_fd=shard)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refused(f"{self._where(key)} is a link", exc) from exc
            raise
        try:
            self._checked(os.fstat(fd), self._where(key))
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextmanager
    def _locked(self, shard: int, key: str) -> Iterator[None]:
        """Hold the shard's lock file (``flock``; open file descriptions exclude each other, in and across processes)."""
        try:
            fd = os.open(".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=shard)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refused(f"{self.root}/{key[:2]}/.lock is a link", exc) from exc
            raise
        try:
            self._checked(os.fstat(fd), f"{self.root}/{key[:2]}/.lock")
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def put(self, key: str, data: bytes) -> None:
        key = check_key(key)
        with self._shard(key, create=True) as shard:
            assert shard is not None  # just made
            with self._locked(shard, key):
                fd = self._open_blob(shard, key)
                if fd is not None:
                    try:
                        os.utime(fd)  # a fresh write of a shared blob: GC spares it again for a while
                    finally:
                        os.close(fd)
                    return
            tmp = f".tmp-{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=shard)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(bytes(data))
                os.replace(tmp, key, src_dir_fd=shard, dst_dir_fd=shard)  # replaces a link itself, never its target
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=shard)
                except FileNotFoundError:
                    pass
                raise

    def get(self, key: str) -> bytes | None:
        key = check_key(key)
        with self._shard(key) as shard:
            fd = None if shard is None else self._open_blob(shard, key)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def __contains__(self, key: object) -> bool:
        key = check_key(key)
        with self._shard(key) as shard:
            return shard is not None and self._stat(shard, key) is not None

    def _entries(self) -> Iterator[tuple[str, os.stat_result]]:
        """``(key, stat)`` of every blob; a link anywhere in the root or a shard raises."""
        root = self._open_root()
        try:
            with os.scandir(root) as top:
                names = []
                for entry in top:
                    if entry.is_symlink():
                        raise _refused(f"{self.root}/{entry.name} is a link")
                    if _SHARD.match(entry.name):
                        names.append(entry.name)
            for name in sorted(names):
                shard = self._open_dir(root, name, str(self.root))
                if shard is None:
                    continue  # removed meanwhile
                try:
                    with os.scandir(shard) as entries:
                        for entry in entries:
                            if entry.is_symlink():
                                raise _refused(f"{self.root}/{name}/{entry.name} is a link")
                            if KEY_PATTERN.match(entry.name):
                                try:
                                    st = entry.stat(follow_symlinks=False)
                                except FileNotFoundError:
                                    continue  # collected meanwhile
                                yield entry.name, self._checked(st, f"{self.root}/{name}/{entry.name}")
                finally:
                    os.close(shard)
        finally:
            os.close(root)

    def keys(self) -> list[str]:
        return sorted(key for key, _ in self._entries())

    def delete(self, keys: Iterable[str], before: float = math.inf) -> int:
        shards: dict[str, list[str]] = {}
        for key in keys:
            shards.setdefault(check_key(key)[:2], []).append(key)
        dropped = 0
        for group in shards.values():
            with self._shard(group[0]) as shard:
                if shard is None:
                    continue  # none of its blobs exists
                with self._locked(shard, group[0]):  # the lock ``put`` refreshes under: check and unlink are one step
                    for key in group:
                        st = self._stat(shard, key)
                        if st is not None and st.st_mtime <= before:
                            os.unlink(key, dir_fd=shard)
                            dropped += 1
        return dropped

    def touch(self, keys: Iterable[str]) -> bool:
        present = True
        for key in [check_key(k) for k in keys]:
            with self._shard(key) as shard:
                if shard is None:
                    present = False
                    continue
                with self._locked(shard, key):  # the lock ``delete`` checks under
                    fd = self._open_blob(shard, key)
                    if fd is None:
                        present = False
                        continue
                    try:
                        os.utime(fd)
                    finally:
                        os.close(fd)
        return present

    def age(self, key: str) -> float | None:
        key = check_key(key)
        with self._shard(key) as shard:
            st = None if shard is None else self._stat(shard, key)
        return None if st is None else time.time() - st.st_mtime

    @property
    def nbytes(self) -> int:
        return sum(st.st_size for _, st in self._entries())

    def __repr__(self) -> str:
        return f"FolderBlobStore({str(self.root)!r})"
