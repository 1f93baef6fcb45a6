"""Whether lake files still hold what was written: every page decoded against its CRC, and each
raw message's bytes against its sha256 (DuckDB checks neither, so a notebook would read a
damaged file without a word). Runs check the files of their partitions (stages set aside what
they can rebuild and fail on the rest); the scrub checks every file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import PurePosixPath

import pyarrow as pa

from mail_pipeline.storage import objects
from mail_pipeline.storage.lake import Lake, LakeReadError, iter_file, remedy, verify_file
from mail_pipeline.storage.objects import Location
from mail_pipeline.storage.permissions import private_dir
from mail_pipeline.storage.schemas import TABLES


class ContentMismatch(Exception):
    """A raw message's bytes do not hash to its stored sha256, though every page reads."""


@dataclass(frozen=True)
class Damage:
    table: str
    account: str
    day: date
    path: Location
    error: str  # the cause, without the remedy

    def describe(self) -> str:
        todo = remedy(self.table)
        return f"{self.table} {self.account} {self.day}: {self.path}: {self.error.rstrip('. ')}. {todo[:1].upper()}{todo[1:]}"


def verify_raw_file(path: Location) -> int:
    """Decode every page of a raw_messages file and hash each message; return its rows."""
    return sum(batch.num_rows for batch in hashed(path, iter_file(path, batch_size=256)))


def hashed(path: Location, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """`batches` read from the raw_messages file `path` (their pages checked as read), each message's
    bytes checked against its sha256 as they pass: a rewrite checks the file it copies in one read."""
    rows = 0
    for batch in batches:
        expected = batch.column("sha256").to_pylist()
        for index, digest in enumerate(digests(batch.column("raw"))):
            if digest is not None and digest != expected[index]:
                uid, folder = (
                    batch.column("uid")[index].as_py(),
                    batch.column("folder")[index].as_py(),
                )
                raise LakeReadError(
                    path,
                    ContentMismatch(
                        f"the bytes of {folder} UID {uid} (row {rows + index}) do not match their sha256"
                    ),
                )
        rows += batch.num_rows
        yield batch


def check_raw(lake: Lake, account: str, day: date) -> None:
    """Raise LakeReadError naming the day's raw_messages file when it does not read back as written."""
    for path in lake.partition_files("raw_messages", account, day):
        verify_raw_file(path)


def digests(values: pa.LargeBinaryArray) -> Iterator[str | None]:
    """Each value's sha256 (None for a null), hashed in place in the column's buffer: no copy per message."""
    if values.type != pa.large_binary():
        values = values.cast(pa.large_binary())  # 64-bit offsets, as the buffer is read below
    _validity, offsets, data = values.buffers()
    if data is None:  # every value null or empty
        yield from (
            None if v is None else hashlib.sha256(v).hexdigest() for v in values.to_pylist()
        )
        return
    ends, body = memoryview(offsets).cast("q"), memoryview(data)
    nulls = values.is_null().to_pylist() if values.null_count else [False] * len(values)
    for index, null in enumerate(nulls, values.offset):
        yield None if null else hashlib.sha256(body[ends[index] : ends[index + 1]]).hexdigest()


def check_file(table: str, path: Location) -> int:
    """Raise LakeReadError naming `path` when it does not read back as written; return its rows."""
    return verify_raw_file(path) if table == "raw_messages" else verify_file(path)


def partition_damage(lake: Lake, tables: Iterable[str], account: str, day: date) -> list[Damage]:
    """The files of the (account, day) partition of `tables` that do not read back as written."""
    found = []
    for table in tables:
        for path in lake.partition_files(table, account, day):
            try:
                check_file(table, path)
            except LakeReadError as error:
                # else retention or a repair took it meanwhile: nothing is damaged
                if path.exists():
                    found.append(Damage(table, account, day, path, error.cause))
    return found


def scrub(lake: Lake, tables: Iterable[str] = TABLES) -> list[Damage]:
    """Every damaged file of the lake (`tables`), each read once, one at a time."""
    return [
        damage
        for table in tables
        for account, day in lake.list_partitions(table)
        for damage in partition_damage(lake, [table], account, day)
    ]


def set_aside(lake: Lake, damage: Damage, now: datetime | None = None) -> Location:
    """Move a damaged file under <storage>/quarantine/<UTC time>/lake/, where `mail-pipeline repair`
    puts the files it moves (never deleted: it may be looked at, or salvaged)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return move_aside(lake, damage.path, lake.root.parent / "quarantine" / stamp)


def move_aside(lake: Lake, path: Location, folder: Location) -> Location:
    """Move the lake file `path` under `folder`, keeping its place in the lake's layout."""
    # the same layout under `folder`: a local Path and an S3 UPath both print as their full name
    relative = PurePosixPath(str(path)).relative_to(str(lake.root))
    target = folder / "lake" / str(relative)
    if not objects.is_remote(target):
        private_dir(target.parent)
    objects.move(path, target)
    return target


def rebuild_damaged(lake: Lake, tables: Iterable[str], account: str, day: date) -> list[str]:
    """Set aside the partition's damaged files of `tables` (ones its stage rebuilds from their
    source); return a line per file for the partition's metadata."""
    return [
        f"{d.table} file damaged ({d.error}); moved to {set_aside(lake, d)} and rebuilt"
        for d in partition_damage(lake, tables, account, day)
    ]


def render(found: list[Damage], root: Location) -> str:
    """The scrub's report: each damaged file, what it costs and the command that repairs it."""
    if not found:
        return f"every lake file under {root} reads back as written (page checksums, raw messages' sha256)"
    lines = [f"{len(found)} damaged lake file(s):"]
    lines += [f"  {damage.describe()}" for damage in found]
    return "\n".join(lines)
