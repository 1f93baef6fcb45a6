"""`warehouse.duckdb`: views over the lake, and nothing else.

The file holds no data, so a notebook can keep it open read-only while the pipeline writes
Parquet: the views read the files at query time and see new partitions at once. The pipeline
opens it read-write only when the view definitions change (a version stamp inside), and a
reader holding it open then only delays that update, never a materialization.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mail_pipeline.storage import objects, state
from mail_pipeline.storage.lake import PLACEHOLDER_ACCOUNT, Lake
from mail_pipeline.storage.permissions import PRIVATE_FILE, private_dir
from mail_pipeline.storage.schemas import TABLES

if TYPE_CHECKING:
    import polars

log = logging.getLogger(__name__)


def _scan(lake: Lake, table: str) -> str:
    directory = lake.table_dir(table)
    if objects.is_remote(directory):  # read through the filesystem `attach_storage` registers
        glob = f"{directory}/*/*/*.parquet"
    else:
        glob = (directory.resolve() / "*" / "*" / "*.parquet").as_posix()
    return (
        f"SELECT * FROM read_parquet('{glob}', "
        "hive_partitioning = true, union_by_name = true, "
        "hive_types = {'account': VARCHAR, 'day': DATE}) "
        f"WHERE account <> '{PLACEHOLDER_ACCOUNT}'"
    )


def _table_view(lake: Lake, table: str) -> str:
    overlay = next((o for o in state.OVERLAYS if o.base == table), None)
    sql = (
        state.view_sql(overlay, _scan(lake, table), _scan(lake, overlay.table))
        if overlay
        else _scan(lake, table)
    )
    return f"CREATE OR REPLACE VIEW {table} AS {sql}"


# State tables are read through the tables they override (storage/state.py), not as views of their own.
TABLE_VIEWS = [table for table in TABLES if table not in {o.table for o in state.OVERLAYS}]

DERIVED_VIEWS = {
    "threads": """
        SELECT account, thread_id,
               arg_min(subject, coalesce(sent_at, received_at)) AS subject,
               list_distinct(list(from_address)) AS participants,
               min(coalesce(sent_at, received_at)) AS first_message_at,
               max(coalesce(sent_at, received_at)) AS last_message_at,
               count(*) AS message_count
        FROM emails GROUP BY account, thread_id""",
    "daily_volume": """
        SELECT account, day, count(*) AS messages, sum(size) AS bytes,
               count(*) FILTER (WHERE len(attachments) > 0) AS with_attachments
        FROM emails GROUP BY account, day""",
    "top_senders": """
        SELECT account, from_address, any_value(from_name) AS from_name, count(*) AS messages,
               max(received_at) AS last_received_at
        FROM emails GROUP BY account, from_address""",
    "sync_status": """
        WITH ranked AS (
            SELECT *, row_number() OVER (PARTITION BY account, folder ORDER BY started_at DESC) AS rn
            FROM sync_log),
        successes AS (
            SELECT account, folder, max(finished_at) AS last_success
            FROM sync_log WHERE status = 'ok' GROUP BY account, folder
            -- '*' rows are account-wide failures (login, a stage's disk or file error): any later
            -- successful folder sync of the account resolves them.
            UNION ALL
            SELECT account, '*' AS folder, max(finished_at) AS last_success
            FROM sync_log WHERE status = 'ok' GROUP BY account),
        failures AS (
            SELECT l.account, l.folder, count(*) AS consecutive_failures
            FROM sync_log l LEFT JOIN successes s USING (account, folder)
            WHERE l.status <> 'ok' AND l.started_at > coalesce(s.last_success, TIMESTAMPTZ '1970-01-01 00:00:00+00')
            GROUP BY l.account, l.folder),
        reconciled AS (
            SELECT account, folder, max(flags_reconciled_at) AS flags_reconciled_at,
                   arg_max(highestmodseq, finished_at) FILTER (WHERE highestmodseq IS NOT NULL) AS modseq_reached
            FROM sync_log WHERE status = 'ok' GROUP BY account, folder)
        SELECT r.account, r.folder, r.status AS last_status, r.finished_at AS last_sync,
               s.last_success, coalesce(f.consecutive_failures, 0) AS consecutive_failures,
               r.uidvalidity, r.highest_uid, c.modseq_reached, c.flags_reconciled_at,
               (SELECT error FROM sync_log e WHERE e.account = r.account AND e.folder = r.folder
                  AND e.status <> 'ok' ORDER BY e.started_at DESC LIMIT 1) AS last_error
        FROM ranked r LEFT JOIN successes s USING (account, folder)
                      LEFT JOIN failures f USING (account, folder)
                      LEFT JOIN reconciled c USING (account, folder)
        WHERE r.rn = 1 AND NOT (r.folder = '*' AND coalesce(f.consecutive_failures, 0) = 0)""",
}


def attach_storage(con: duckdb.DuckDBPyConnection, lake: Lake) -> duckdb.DuckDBPyConnection:
    """Let `con` read a lake on S3: DuckDB's httpfs is an extension download (not possible on
    every machine), so the same fsspec filesystem the pipeline writes through is registered on
    the connection. A local lake needs nothing."""
    root = lake.root
    if objects.is_remote(root) and not con.filesystem_is_registered(root.fs.protocol[0]):
        con.register_filesystem(root.fs)
    return con


def view_statements(lake: Lake) -> list[str]:
    statements = [_table_view(lake, table) for table in TABLE_VIEWS]
    statements += [
        f"CREATE OR REPLACE VIEW {name} AS {sql.strip()}" for name, sql in DERIVED_VIEWS.items()
    ]
    return statements


def _version(statements: list[str]) -> str:
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]


def current_version(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute("SELECT version FROM catalog_version").fetchone()
            return row[0] if row else None
    except duckdb.Error:
        return None


def ensure_catalog(path: Path, lake: Lake) -> bool:
    """Create or update the views when their definitions changed. Returns True when written.

    A reader holding the file open makes the write fail with a lock error: that is logged and
    left for the next run, because the views in place still read every file the run wrote.
    """
    lake.ensure_placeholders()
    statements = view_statements(lake)
    version = _version(statements)
    if current_version(path) == version:
        return False
    private_dir(path.parent)
    try:
        with attach_storage(duckdb.connect(str(path)), lake) as con:
            for statement in statements:
                con.execute(statement)
            con.execute("CREATE OR REPLACE TABLE catalog_version AS SELECT ? AS version", [version])
    except duckdb.IOException as error:
        log.warning("catalog update postponed, %s is held open elsewhere: %s", path, error)
        return False
    path.chmod(PRIVATE_FILE)
    return True


def connect(path: Path, lake: Lake | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection for readers: never blocks the pipeline's writes. Its views read
    `lake`'s files, which on S3 need its filesystem registered (`attach_storage`)."""
    con = duckdb.connect(str(path), read_only=True)
    return attach_storage(con, lake) if lake is not None else con


def memory_connection(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the views over `lake`: for a process that reads while the
    pipeline may update warehouse.duckdb's views (holding that file would block the update)."""
    lake.ensure_placeholders()
    con = attach_storage(duckdb.connect(":memory:"), lake)
    for statement in view_statements(lake):
        con.execute(statement)
    return con


@contextmanager
def reading_connection(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    """Like memory_connection, but writing nothing, not even the placeholders: a table with no
    file yet has no view (for previews that must leave the data directory as it is)."""
    con = attach_storage(duckdb.connect(":memory:"), lake)
    try:
        for statement in view_statements(lake):
            try:
                con.execute(statement)
            except duckdb.Error:
                log.debug("no view: its table has no file yet (%s)", statement[:60])
        yield con
    finally:
        con.close()


def frame(
    path: Path, sql: str, params: Iterable[object] = (), lake: Lake | None = None
) -> polars.DataFrame:
    """`sql` over the views, read-only, as a polars DataFrame (DuckDB hands it over as Arrow)."""
    with connect(path, lake) as con:
        result: polars.DataFrame = con.sql(sql, params=list(params)).pl()
        return result
