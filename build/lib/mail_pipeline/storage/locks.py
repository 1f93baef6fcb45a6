"""A reader-writer file lock between processes on one host.

Ingest runs write LanceDB under a shared lock; retention compacts and deletes old versions under
the exclusive one, because `cleanup_old_versions(delete_unverified=True)` would otherwise delete
the data files of a write still in flight.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
