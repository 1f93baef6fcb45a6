"""Everything under the data directory is readable by its owner only: files 0600, folders 0700.

Mail, passwords' tokens and the search index are personal data; a 0644 lake on a shared host lets
any local user read every message. Writers here set modes explicitly, and the pipeline's
processes run with umask 077 so files other libraries create (LanceDB, DuckDB) are private too.
"""

from __future__ import annotations

import itertools
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def restrict_umask() -> None:
    """New files and folders of this process and its children get no group or other bits."""
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents with mode 0700 (existing folders are left alone)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another process made it first
            pass
        else:
            # mkdir's mode is masked by the umask, never widened: make it exact
            directory.chmod(PRIVATE_DIR)
    return path


def create_private_file(path: Path) -> Path:
    """Create an empty file that no one else can open, before anything is written into it."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    return path


def write_private(path: Path, content: bytes) -> None:
    """Write `content` to `path` through a 0600 temporary file, fsynced, then renamed into place."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def loose_paths(root: Path) -> Iterator[tuple[Path, int]]:
    """Files and folders under `root` (itself included) that group or others may access, with their mode."""
    root = Path(root)
    if not root.exists():
        return
    walked = (
        Path(directory) / name for directory, dirs, files in os.walk(root) for name in dirs + files
    )
    for path in itertools.chain([root], walked):
        try:
            info = path.lstat()
        except FileNotFoundError:  # removed while walking
            continue
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
            yield path, stat.S_IMODE(info.st_mode)
