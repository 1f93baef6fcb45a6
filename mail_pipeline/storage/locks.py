"""File locks between processes on one host: a reader-writer lock, liveness locks, and claims.

Ingest runs write LanceDB under a shared lock; retention compacts and deletes old versions under
the exclusive one, because `cleanup_old_versions(delete_unverified=True)` would otherwise delete
the data files of a write still in flight. A run worker holds a liveness lock for its lifetime,
so the daemon's run monitoring can tell a killed run from a running one (defs/run_launcher.py).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from mail_pipeline.storage import objects
from mail_pipeline.storage.permissions import PRIVATE_FILE, private_dir


@contextmanager
def file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def vectors_lock(
    data_dir: Path, storage_url: str, *, exclusive: bool
) -> AbstractContextManager[None]:
    """LanceDB's lock: writers (a run's step, or the search service writing a run's rows) take it
    shared, retention's upkeep exclusive. None on object storage, where no file lock spans the
    hosts that write it and LanceDB's commits settle concurrent writers (retention then keeps the
    files no version references yet for Lance's own grace period: VectorStore.remove_unreferenced)."""
    if objects.is_remote_url(storage_url):
        return nullcontext()
    return file_lock(Path(data_dir) / "lancedb.lock", exclusive=exclusive)


class LivenessLock:
    """A file held locked for as long as a process lives: the kernel drops the lock when the
    process dies, SIGKILL and OOM included, so another process (on the same host, or sharing the
    folder through a local volume) can tell a dead holder from a live one. See `probe`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> LivenessLock:
        # Locked under a temporary name, then renamed: a prober never sees the file unlocked.
        private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # before the unlock: a prober then finds nothing, never a free lock
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def probe(path: Path) -> bool | None:
    """True while the file's holder lives, False once it died without releasing it (the file is
    then removed), None when there is no such file (never taken, or released)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return None
        except FileNotFoundError:  # the holder released it between our open and lock: it finished
            return None
        Path(path).unlink(missing_ok=True)
        return False
    finally:
        os.close(fd)


def holder_pid(path: Path) -> int | None:
    """The pid the holder wrote into the file (for messages and tests), if readable."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


class ClaimedElsewhere(Exception):
    """Another live process holds the claim; `holder` is what it wrote (pid, address), if readable."""

    def __init__(self, holder: dict[str, Any]):
        super().__init__(f"claimed by {holder}")
        self.holder = holder


class Claim:
    """One process at a time over a resource (a data directory): an exclusive lock the kernel
    drops when its holder dies, so a claim left by a killed process is simply taken over. The file
    says who holds it, for the message the next claimant prints; `previous` is what a dead holder
    had written (None when the claim was free)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self.previous: dict[str, Any] | None = None

    def acquire(self, holder: dict[str, Any]) -> Claim:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ClaimedElsewhere(_holder(self.path)) from None
        self.previous = _holder(self.path) or None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), **holder}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # the next claimant finds a free claim, not a dead holder
            os.close(self._fd)
            self._fd = None


def _holder(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
