"""A reader-writer file lock between processes on one host.

Ingest runs write LanceDB under a shared lock; retention compacts and deletes old versions under
the exclusive one, because `cleanup_old_versions(delete_unverified=True)` would otherwise delete
the data files of a write still in flight.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
