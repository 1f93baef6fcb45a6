"""The Parquet lake: one zstd file per (table, account, day), written to a temporary name and
renamed into place, so readers (DuckDB views, notebooks) never see half a file and never block
a writer.

Layout: `<root>/<table>/account=<slug>/day=<YYYY-MM-DD>/part-0.parquet`. Append-only tables
(`sync_log`) hold several uniquely named files per partition instead.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mail_pipeline.storage.schemas import TABLES

PART_NAME = "part-0.parquet"
# An empty file per table under an account no slug can match ('~'): DuckDB's read_parquet
# raises "No files found" on an empty glob, and this keeps every view valid on an empty lake.
PLACEHOLDER_ACCOUNT = "~empty"
PLACEHOLDER_DAY = date(1970, 1, 1)


@dataclass(frozen=True)
class WriteResult:
    rows: int
    bytes: int
    path: Path


class Lake:
    def __init__(self, root: Path):
        self.root = Path(root)

    def table_dir(self, table: str) -> Path:
        if table not in TABLES:
            raise ValueError(f"unknown lake table {table!r}")
        return self.root / table

    def partition_dir(self, table: str, account: str, day: date) -> Path:
        return self.table_dir(table) / f"account={account}" / f"day={day.isoformat()}"

    def partition_file(self, table: str, account: str, day: date) -> Path:
        return self.partition_dir(table, account, day) / PART_NAME

    def ensure_placeholders(self) -> None:
        for table, schema in TABLES.items():
            path = self.partition_file(table, PLACEHOLDER_ACCOUNT, PLACEHOLDER_DAY)
            # Rewritten when the schema gained columns: views read them by name across every file.
            if not path.exists() or pq.read_schema(path).names != schema.names:
                self._write(path, [], schema)

    def write_partition(
        self, table: str, account: str, day: date, data: pa.Table | Iterable[pa.RecordBatch]
    ) -> WriteResult:
        """Replace the partition's file with `data` (a table, or batches streamed to disk)."""
        schema = TABLES[table]
        batches = data.cast(schema).to_batches() if isinstance(data, pa.Table) else data
        return self._write(self.partition_file(table, account, day), batches, schema)

    def append(self, table: str, account: str, day: date, data: pa.Table) -> WriteResult:
        path = self.partition_dir(table, account, day) / f"part-{uuid.uuid4().hex}.parquet"
        return self._write(path, data.cast(TABLES[table]).to_batches(), TABLES[table])

    def _write(self, path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> WriteResult:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                rows = write_behind(writer, batches)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return WriteResult(rows=rows, bytes=path.stat().st_size, path=path)

    def read_partition(self, table: str, account: str, day: date, columns: list[str] | None = None) -> pa.Table:
        """The partition's rows, or an empty table of the right schema when it does not exist."""
        directory = self.partition_dir(table, account, day)
        schema = TABLES[table]
        files = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
        if not files:
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        return pa.concat_tables(pq.read_table(f, columns=columns, schema=schema) for f in files)

    def iter_batches(self, table: str, account: str, day: date, batch_size: int = 256) -> Iterable[pa.RecordBatch]:
        """The partition's rows in file order, in the table's current schema (columns added since
        the file was written come back null)."""
        path = self.partition_file(table, account, day)
        if not path.exists():
            return
        schema = TABLES[table]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
            if batch.schema.names != schema.names:
                batch = pa.RecordBatch.from_arrays(
                    [batch.column(f.name) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type) for f in schema],
                    schema=schema)
            yield batch

    def list_partitions(self, table: str, account: str | None = None) -> list[tuple[str, date]]:
        found = []
        base = self.table_dir(table)
        for account_dir in sorted(base.glob("account=*")) if base.is_dir() else []:
            slug = account_dir.name.removeprefix("account=")
            if slug == PLACEHOLDER_ACCOUNT or (account is not None and slug != account):
                continue
            for day_dir in sorted(account_dir.glob("day=*")):
                if any(day_dir.glob("*.parquet")):
                    found.append((slug, date.fromisoformat(day_dir.name.removeprefix("day="))))
        return found

    def drop_partition(self, table: str, account: str, day: date) -> int:
        """Delete the partition's files; return the bytes freed."""
        directory = self.partition_dir(table, account, day)
        if not directory.is_dir():
            return 0
        freed = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        shutil.rmtree(directory)
        return freed


def write_behind(writer: pq.ParquetWriter, batches: Iterable[pa.RecordBatch], depth: int = 2) -> int:
    """Write `batches` on a second thread while this one produces the next ones; return the rows.

    zstd and the file write release the GIL, so they overlap what produces the batches: for
    raw_messages, IMAP reads, where writing in series was 15% of the stage (bench: 0.84 -> 0.93
    of the bare-imapclient ceiling). At most `depth` batches wait in between. An error on either
    side stops both and is raised here."""
    pending: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []

    def drain() -> None:
        while (batch := pending.get()) is not None:
            if failed:
                continue  # keep taking batches so the producer never blocks on a full queue
            try:
                writer.write_batch(batch.cast(writer.schema) if batch.schema != writer.schema else batch)
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


def rows_to_batches(rows: Iterable[dict], schema: pa.Schema, batch_rows: int = 256) -> Iterable[pa.RecordBatch]:
    """Stream dict rows into record batches, so a day's mail is never held in memory twice."""
    pending: list[dict] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= batch_rows:
            yield pa.RecordBatch.from_pylist(pending, schema=schema)
            pending = []
    if pending:
        yield pa.RecordBatch.from_pylist(pending, schema=schema)
