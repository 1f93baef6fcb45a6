"""The Parquet lake: one zstd file per (table, account, day), written to a temporary name and
renamed into place, so readers (DuckDB views, notebooks) never see half a file and never block
a writer.

Layout: `<root>/<table>/account=<slug>/day=<YYYY-MM-DD>/part-0.parquet`. Append-only tables
(`sync_log`) hold several uniquely named files per partition instead. Files are 0600 and folders
0700 (storage/permissions.py). Pages carry CRC checksums, verified on every read: a damaged file
fails with its path and the remedy (`mail-pipeline repair`) instead of a bare decoder error.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mail_pipeline.storage import objects
from mail_pipeline.storage.objects import Location
from mail_pipeline.storage.permissions import PRIVATE_FILE, private_dir
from mail_pipeline.storage.schemas import TABLES

PART_NAME = "part-0.parquet"
# An empty file per table under an account no slug can match ('~'): DuckDB's read_parquet
# raises "No files found" on an empty glob, and this keeps every view valid on an empty lake.
PLACEHOLDER_ACCOUNT = "~empty"
PLACEHOLDER_DAY = date(1970, 1, 1)
READ_ERRORS = (OSError, pa.ArrowException)
ROW_GROUP_BYTES = 16 * 1024 * 1024  # a day of mail is one or a few row groups (write_behind)
# In every file's footer: a fresh id per write, so a stage can tell whether the file it was
# built from is still the one in place (stages/emails.py) without reading or hashing it.
WRITE_ID = b"mail_pipeline.write_id"


def conformed(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table | pa.RecordBatch:
    """`table` (or batch) cast to `schema` where it differs: a cast imports pyarrow.compute, slow
    the first time in a process, which was at the end of every sync (writing its sync_log)."""
    return table if table.schema == schema else table.cast(schema)


def footer_value(metadata: pq.FileMetaData | None, key: bytes) -> bytes | None:
    """One key-value entry of a file's footer (`Lake.file_metadata`); None without the file or the key."""
    return (metadata.metadata or {}).get(key) if metadata is not None else None


class LakeReadError(Exception):
    """A lake file cannot be read, or holds other bytes than were written; the message names it and the remedy."""

    def __init__(self, path: Location | str, cause: BaseException):
        self.path: Location = Path(path) if isinstance(path, str) else path
        self.table = table_of(self.path)
        self.cause = f"{type(cause).__name__}: {str(cause)[:300]}"
        super().__init__(
            f"cannot read {self.path}: {self.cause.rstrip('. ')}. The file is damaged; {remedy(self.table)}"
        )


def table_of(path: Location | str) -> str:
    """The lake table a partition file belongs to (the folder above `account=`), or '' when none."""
    parts = (Path(path) if isinstance(path, str) else path).parts
    return next(
        (parts[i - 1] for i, part in enumerate(parts) if part.startswith("account=") and i), ""
    )


# What a damaged file of each table costs, once `mail-pipeline repair` has moved it aside.
CONSEQUENCES = {
    "raw_messages": "the backfill fetches what the server still has; repair names the messages it no longer has",
    "message_state": "the backfill takes every message's flags from the server again",
    "emails": "the backfill parses the day again from raw_messages: nothing is lost",
    "email_state": "the backfill derives it again from raw_messages: nothing is lost",
    "email_chunks": "the backfill cuts the chunks again from emails: nothing is lost",
    "sync_log": "it holds sync history only (no mail), which is not rebuilt",
    "contacts": "the next contacts run builds it again from emails: nothing is lost",
}


def remedy(table: str) -> str:
    """The command that repairs a damaged file of `table`, and what it costs."""
    consequence = CONSEQUENCES.get(table, "the partition's next run rebuilds it")
    return f"run `mail-pipeline repair` (it moves the file aside), then the backfill it prints ({consequence})"


@dataclass(frozen=True)
class WriteResult:
    rows: int
    bytes: int
    path: Location
    write_id: str = ""


class Lake:
    def __init__(self, root: Location | str):
        """`root`: a local folder, or an s3://bucket/prefix URL or location (storage/objects.py)."""
        self.root: Location = objects.location(root) if isinstance(root, str) else root

    def table_dir(self, table: str) -> Location:
        if table not in TABLES:
            raise ValueError(f"unknown lake table {table!r}")
        return self.root / table

    def partition_dir(self, table: str, account: str, day: date) -> Location:
        return self.table_dir(table) / f"account={account}" / f"day={day.isoformat()}"

    def partition_file(self, table: str, account: str, day: date) -> Location:
        return self.partition_dir(table, account, day) / PART_NAME

    def ensure_placeholders(self) -> None:
        for table, schema in TABLES.items():
            path = self.partition_file(table, PLACEHOLDER_ACCOUNT, PLACEHOLDER_DAY)
            # Rewritten when the schema gained columns: views read them by name across every file.
            where, filesystem = objects.source(path)
            if (
                not path.exists()
                or pq.read_schema(where, filesystem=filesystem).names != schema.names
            ):
                self._write(path, [], schema)

    def write_partition(
        self,
        table: str,
        account: str,
        day: date,
        data: pa.Table | Iterable[pa.RecordBatch],
        footer: dict[bytes, bytes] | None = None,
    ) -> WriteResult:
        """Replace the partition's file with `data` (a table, or batches streamed to disk), with
        `footer` among its key-value metadata; temporary files no live writer holds are removed."""
        schema = TABLES[table]
        batches = conformed(data, schema).to_batches() if isinstance(data, pa.Table) else data
        path = self.partition_file(table, account, day)
        if not objects.is_remote(path):  # an object store has no temporary files to leave
            remove_leftovers(path.parent, f".{path.name}.*.tmp")
        return self._write(path, batches, schema, footer)

    def file_metadata(self, table: str, account: str, day: date) -> pq.FileMetaData | None:
        """The partition file's footer: rows, key-value metadata (None when there is no file)."""
        path = self.partition_file(table, account, day)
        try:
            where, filesystem = objects.source(path)
            return pq.read_metadata(where, filesystem=filesystem)
        except FileNotFoundError:
            return None
        except READ_ERRORS as error:
            raise LakeReadError(path, error) from error

    def append(self, table: str, account: str, day: date, data: pa.Table) -> WriteResult:
        directory = self.partition_dir(table, account, day)
        if not objects.is_remote(directory):
            remove_leftovers(directory, ".part-*.parquet.*.tmp")
        path = directory / f"part-{uuid.uuid4().hex}.parquet"
        return self._write(path, conformed(data, TABLES[table]).to_batches(), TABLES[table])

    def _write(
        self,
        path: Location,
        batches: Iterable[pa.RecordBatch],
        schema: pa.Schema,
        footer: dict[bytes, bytes] | None = None,
    ) -> WriteResult:
        write_id = uuid.uuid4().hex
        schema = schema.with_metadata(
            {**(schema.metadata or {}), **(footer or {}), WRITE_ID: write_id.encode()}
        )
        if objects.is_remote(path):

            def produce(sink: pa.BufferOutputStream) -> int:
                with pq.ParquetWriter(
                    sink, schema, compression="zstd", write_page_checksum=True
                ) as writer:
                    return write_behind(writer, batches)

            rows, size = objects.put_whole(path, produce)
            return WriteResult(rows=rows, bytes=size, path=path, write_id=write_id)
        private_dir(path.parent)
        tmp, held = claim_temp(path)
        try:
            with pq.ParquetWriter(
                tmp, schema, compression="zstd", write_page_checksum=True
            ) as writer:
                rows = write_behind(writer, batches)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(held)
        return WriteResult(rows=rows, bytes=path.stat().st_size, path=path, write_id=write_id)

    def partition_files(self, table: str, account: str, day: date) -> list[Location]:
        directory = self.partition_dir(table, account, day)
        return sorted(directory.glob("*.parquet")) if directory.is_dir() else []

    def read_partition(
        self, table: str, account: str, day: date, columns: list[str] | None = None
    ) -> pa.Table:
        """The partition's rows, or an empty table of the right schema when it does not exist."""
        schema = TABLES[table]
        files = self.partition_files(table, account, day)
        if not files:
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        tables = [read_file(f, columns=columns, schema=schema) for f in files]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def iter_batches(
        self, table: str, account: str, day: date, batch_size: int = 256
    ) -> Iterable[pa.RecordBatch]:
        """The partition's rows in file order, in the table's current schema (columns added since
        the file was written come back null)."""
        path = self.partition_file(table, account, day)
        if not path.exists():
            return
        schema = TABLES[table]
        for batch in iter_file(path, batch_size):
            if batch.schema.names != schema.names:
                batch = pa.RecordBatch.from_arrays(
                    [
                        batch.column(f.name)
                        if f.name in batch.schema.names
                        else pa.nulls(batch.num_rows, f.type)
                        for f in schema
                    ],
                    schema=schema,
                )
            yield batch

    def verify_partition(self, table: str, account: str, day: date) -> int:
        """Read every page of the partition's files (checksums, decompression); return the rows.
        Raises LakeReadError naming the first damaged file."""
        return sum(verify_file(path) for path in self.partition_files(table, account, day))

    def list_partitions(self, table: str, account: str | None = None) -> list[tuple[str, date]]:
        """(account, day) of every partition of `table` holding a file: one listing, which on S3
        is one LIST request per 1000 files rather than one per folder."""
        found = set()
        base = self.table_dir(table)
        pattern = f"account={account or '*'}/day=*/*.parquet"
        for path in base.glob(pattern) if base.is_dir() else []:
            slug = path.parent.parent.name.removeprefix("account=")
            if slug != PLACEHOLDER_ACCOUNT:
                found.add((slug, date.fromisoformat(path.parent.name.removeprefix("day="))))
        return sorted(found)

    def drop_partition(self, table: str, account: str, day: date) -> int:
        """Delete the partition's files; return the bytes freed."""
        return objects.remove_tree(self.partition_dir(table, account, day))


def read_file(
    path: Location, columns: list[str] | None = None, schema: pa.Schema | None = None
) -> pa.Table:
    """The file's `columns` (all when None), in `schema`'s types where given."""
    try:
        where, filesystem = objects.source(path)
        parquet = pq.ParquetFile(where, page_checksum_verification=True, filesystem=filesystem)
        wanted = columns or (schema.names if schema is not None else parquet.schema_arrow.names)
        if not set(wanted) <= set(parquet.schema_arrow.names):
            # Written before a column was added: the dataset reader fills it with nulls.
            return pq.read_table(
                where,
                columns=columns,
                schema=schema,
                page_checksum_verification=True,
                filesystem=filesystem,
            )
        # ParquetFile skips the dataset machinery: a third of the time on the small files that
        # flag sync reads per day (storage/state.py).
        table = parquet.read(columns=wanted)
        target = (
            pa.schema([schema.field(name) for name in wanted])
            if schema is not None
            else table.schema
        )
        return conformed(table, target)
    except READ_ERRORS as error:
        raise LakeReadError(path, error) from error


def iter_file(
    path: Location, batch_size: int = 256, columns: list[str] | None = None
) -> Iterable[pa.RecordBatch]:
    try:
        where, filesystem = objects.source(path)
        parquet = pq.ParquetFile(where, page_checksum_verification=True, filesystem=filesystem)
        yield from parquet.iter_batches(batch_size=batch_size, columns=columns)
    except READ_ERRORS as error:
        raise LakeReadError(path, error) from error


def verify_file(path: Location) -> int:
    """Decode every page of one file, holding one batch at a time; return its rows."""
    return sum(batch.num_rows for batch in iter_file(path, batch_size=1024))


def claim_temp(path: Path) -> tuple[Path, int]:
    """A new temporary file beside `path` and a descriptor holding its flock until closed: the
    kernel drops the lock when its writer dies, so a temporary file nobody holds is a leftover,
    whatever its age, and one being written is never taken for one (remove_leftovers)."""
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        held = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
        fcntl.flock(held, fcntl.LOCK_EX)
        if os.fstat(held).st_nlink:
            return tmp, held
        os.close(held)  # removed as a leftover between its creation and the lock: take another name


def remove_leftovers(directory: Path, pattern: str) -> list[Path]:
    """Delete the temporary files in `directory` that no live process holds (claim_temp): those of
    writes that were killed. A file is removed only under its lock, so never while being written."""
    removed = []
    for path in directory.glob(pattern) if directory.is_dir() else []:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_nlink:
                path.unlink(missing_ok=True)
                removed.append(path)
        except BlockingIOError:  # a write in progress
            continue
        finally:
            os.close(fd)
    return removed


def write_behind(
    writer: pq.ParquetWriter, batches: Iterable[pa.RecordBatch], depth: int = 2
) -> int:
    """Write `batches` on a second thread while this one produces the next ones; return the rows.

    zstd and the file write release the GIL, so they overlap what produces the batches: for
    raw_messages, IMAP reads, where writing in series was 15% of the stage (bench: 0.84 -> 0.93
    of the bare-imapclient ceiling). At most `depth` batches wait in between. Batches are joined
    into row groups of up to ROW_GROUP_BYTES: a row group per small batch made every later read
    of a few columns (flag sync, the sensor) twice as slow. An error on either side stops both
    and is raised here."""
    pending: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []
    group: list[pa.RecordBatch] = []
    grouped = [0]  # bytes in `group`

    def flush() -> None:
        writer.write_table(pa.Table.from_batches(group, schema=writer.schema))
        group.clear()
        grouped[0] = 0

    def drain() -> None:
        while (batch := pending.get()) is not None:
            if failed:
                continue  # keep taking batches so the producer never blocks on a full queue
            try:
                group.append(conformed(batch, writer.schema))
                grouped[0] += batch.nbytes
                if grouped[0] >= ROW_GROUP_BYTES:
                    flush()
            except BaseException as error:
                failed.append(error)
        if group and not failed:
            try:
                flush()
            except BaseException as error:
                failed.append(error)

    thread = threading.Thread(target=drain, name="parquet-write-behind", daemon=True)
    thread.start()
    rows = 0
    try:
        for batch in batches:
            if failed:
                break
            if batch.num_rows:
                pending.put(batch)
                rows += batch.num_rows
    finally:
        pending.put(None)
        thread.join()
    if failed:
        raise failed[0]
    return rows


def rows_to_batches(
    rows: Iterable[dict[str, Any]], schema: pa.Schema, batch_rows: int = 256
) -> Iterable[pa.RecordBatch]:
    """Stream dict rows into record batches, so a day's mail is never held in memory twice."""
    pending: list[dict[str, Any]] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= batch_rows:
            yield pa.RecordBatch.from_pylist(pending, schema=schema)
            pending = []
    if pending:
        yield pa.RecordBatch.from_pylist(pending, schema=schema)
