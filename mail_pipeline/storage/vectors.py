"""The LanceDB vector store: one table of chunks with their vectors, searchable by meaning
(vectors), by words (full-text index) or both (hybrid, fused with reciprocal rank fusion).

Partitions of different accounts are written by parallel processes. Lance commits optimistically:
a partition is replaced in one commit (merge-insert keyed on account, day and chunk id, deleting
the partition's rows the new data lacks), so readers never see it half-written, and commits that
lose a race are retried. Index upkeep is best effort: rows an index does not cover yet are still
searched, by a scan, so a lost race there only costs speed until the next write (`indexes`;
when the vector index grows a segment or is built whole: `index_policy`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mail_pipeline.storage import indexes, objects
from mail_pipeline.storage.commits import with_retries
from mail_pipeline.storage.index_policy import Policy
from mail_pipeline.storage.objects import Location
from mail_pipeline.storage.permissions import private_dir
from mail_pipeline.storage.schemas import UTC_TS

if TYPE_CHECKING:  # lancedb is imported where used: ~115 MB and ~0.8 s that most processes skip
    from lancedb.query import LanceQueryBuilder
    from lancedb.table import Table

MERGE_KEYS = ["account", "day", "chunk_id"]
RESULT_COLUMNS = [
    "chunk_id",
    "email_id",
    "account",
    "day",
    "thread_id",
    "subject",
    "sender",
    "sent_at",
    "text",
    "attachment",
    "deleted_at",
]
# Re-ranking twice the asked-for candidates on the full vectors wins back what the index's scalar
# quantization loses (indexes.vector_index).
VECTOR_REFINE_FACTOR = 2
# Candidates the HNSW search keeps (LanceDB's default: 1.5 x the candidates asked for): at 10
# results, 64 instead of the default raised recall@10 from 0.84 to 0.95 on the index of
# `indexes.vector_index` (bench/scale_index.py), for about a millisecond per query; it lets the
# graph be built with fewer candidates per row, at half the build time.
VECTOR_MIN_EF = 64
RRF_K = 60
CACHE_LOOKUP_BATCH = 1000
_HEX = re.compile(r"^[0-9a-f]{1,128}$")


def vector_schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("email_id", pa.string()),
            ("account", pa.string()),
            ("day", pa.date32()),
            ("thread_id", pa.string()),
            ("subject", pa.string()),
            ("sender", pa.string()),
            ("sent_at", UTC_TS),
            ("text", pa.string()),
            ("text_sha256", pa.string()),
            ("model_id", pa.string()),
            ("vector", pa.list_(pa.float32(), dimension)),
            ("attachment", pa.string()),
            ("deleted_at", UTC_TS),  # the email's: set while it is kept after leaving the server
        ]
    )


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_date(value: date) -> str:
    return f"date '{value.isoformat()}'"


def filter_clause(
    account: str | None = None,
    since: date | None = None,
    until: date | None = None,
    day: date | None = None,
    live_only: bool = False,
    emails: dict[str, list[str]] | None = None,
    accounts: Collection[str] | None = None,
) -> str | None:
    """The Lance SQL for these filters; `emails` (account -> email ids) keeps only those emails,
    `accounts` only those accounts' chunks (none when it is empty)."""
    terms = ["deleted_at IS NULL"] if live_only else []
    if emails is not None:
        terms.append(_emails_clause(emails))
    if account is not None:
        terms.append(f"account = {sql_string(account)}")
    if accounts is not None:
        terms.append(
            f"account IN ({', '.join(map(sql_string, sorted(accounts)))})" if accounts else "false"
        )
    if day is not None:
        terms.append(f"day = {sql_date(day)}")
    if since is not None:
        terms.append(f"day >= {sql_date(since)}")
    if until is not None:
        terms.append(f"day <= {sql_date(until)}")
    return " AND ".join(terms) or None


def _emails_clause(emails: dict[str, list[str]]) -> str:
    accounts = [
        f"(account = {sql_string(account)} AND email_id IN ({', '.join(map(sql_string, ids))}))"
        for account, ids in sorted(emails.items())
        if ids
    ]
    return "(" + (" OR ".join(accounts) or "false") + ")"


class VectorStore:
    TABLE = "email_chunks"
    # when the vector index is built whole and when new rows join it as a segment
    policy = Policy()

    def __init__(self, uri: str | Location, dimension: int = 384):
        self.uri = str(uri)
        remote = objects.is_remote_url(self.uri)
        # a local folder: LanceDB's files inside inherit nothing, so keep others out of it
        if not remote:
            private_dir(Path(self.uri))
        self.dimension = dimension
        self.schema = vector_schema(dimension)
        # Check for other processes' commits on every read: a long-lived resource must see them.
        # Imported here: lancedb costs ~115 MB and ~0.8 s to import, which the code server, the
        # daemon's sensor and every CLI command that never opens the store need not pay.
        import lancedb

        self._db = lancedb.connect(
            self.uri,
            read_consistency_interval=timedelta(0),
            storage_options=objects.lancedb_options() if remote else None,
        )
        self._table: Table | None = None
        self._columns: list[str] | None = None
        self._migrated = False

    # -- tables ------------------------------------------------------------------------------

    def _open(self) -> Table | None:
        """The table, opened once per store: the handle still checks for new versions on every
        read (the consistency interval above), and opening costs about 1 ms a time, twice a
        search. The pipeline never drops the table; retention deletes rows."""
        if self._table is None:
            try:
                self._table = self._db.open_table(self.TABLE)
            except (ValueError, FileNotFoundError, RuntimeError, OSError):
                return None
        return self._table

    def _open_or_create(self) -> Table:
        table = self._open()
        if table is not None:
            self._add_missing_columns(table)
            return table
        try:
            self._table = self._db.create_table(self.TABLE, schema=self.schema, exist_ok=True)
            return self._table
        except Exception:  # another process created it between our open and create
            table = self._open()
            if table is None:
                raise
            return table

    def _add_missing_columns(self, table: Table) -> None:
        """Bring a table made by an older version up to the schema (old rows get nulls), once
        per store; what is missing is looked up on each try, as a parallel writer may win."""

        def add() -> None:
            missing = [field for field in self.schema if field.name not in table.schema.names]
            if missing:  # typed null columns (a SQL CAST would lose deleted_at's time zone)
                table.add_columns(missing)

        if not self._migrated:
            with_retries(add, "add columns")
            self._migrated = True

    def _as_table(self, rows: pa.Table | list[dict[str, Any]], account: str, day: date) -> pa.Table:
        if not isinstance(rows, pa.Table):
            rows = pa.Table.from_pylist([_plain_row(row) for row in rows], schema=self.schema)
        rows = rows.select(self.schema.names).cast(self.schema)
        accounts, days = (
            set(rows.column("account").to_pylist()),
            set(rows.column("day").to_pylist()),
        )
        if accounts - {account} or days - {day}:
            raise ValueError(
                f"rows for partition ({account}, {day}) hold other partitions: {accounts}, {days}"
            )
        return rows

    # -- writes ------------------------------------------------------------------------------

    def replace_partition(
        self, account: str, day: date, rows: pa.Table | list[dict[str, Any]]
    ) -> int:
        """Make the (account, day) partition hold exactly `rows`, in one commit. Returns rows written."""
        data = self._as_table(rows, account, day)
        table = self._open_or_create()
        where = filter_clause(account=account, day=day)
        if where is None:  # an account and a day always make a clause
            raise ValueError(f"no filter for {account}/{day}")
        if data.num_rows == 0:
            with_retries(lambda: table.delete(where), f"clear {account}/{day}")
        else:
            merge = (
                table.merge_insert(MERGE_KEYS)
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(where)
            )
            with_retries(lambda: merge.execute(data), f"replace {account}/{day}")
        indexes.maintain(table, self.policy)
        written: int = data.num_rows
        return written

    def drop_before(self, cutoff: date) -> int:
        """Delete rows older than `cutoff` and remove them from disk. Returns rows deleted.

        Lance's delete only marks rows; the retention promise needs the bytes gone, so the table
        is compacted with deletions materialized, indexes are rebuilt from what is left, and every
        older version is removed. Meant for the retention run: a reader still holding an older
        version while this runs fails and must retry.
        """
        table = self._open()
        if table is None:
            return 0
        where = f"day < {sql_date(cutoff)}"
        doomed = table.count_rows(where)
        if doomed == 0:
            return 0
        with_retries(lambda: table.delete(where), "retention delete")
        self._erase_deleted(table)
        return doomed

    def erase_deleted(self) -> None:
        """Remove from disk every row a write deleted or replaced (old versions included): for a
        partition whose rows were erased (an account mirroring server deletions)."""
        table = self._open()
        if table is not None:
            self._erase_deleted(table)

    def _erase_deleted(self, table: Table) -> None:
        with_retries(
            lambda: table.to_lance().optimize.compact_files(
                materialize_deletions=True, materialize_deletions_threshold=0.0
            ),
            "compaction",
        )
        if table.count_rows() > 0:
            indexes.rebuild(table, self.policy)
        # delete_unverified stays False: files no version references yet may be a parallel
        # writer's commit in flight (deleting them corrupts the table); the dropped rows' files
        # are referenced by the versions removed here, so they go either way.
        table.to_lance().cleanup_old_versions(older_than=timedelta(0), delete_unverified=False)

    def remove_unreferenced(self) -> int:
        """Delete the files no kept version references (data and index files of writes killed
        before their commit) and versions older than PRUNE_OLDER_THAN; return the bytes freed.

        Lance keeps unreferenced files for 7 days, since they may be a commit in flight; only the
        exclusive lock (VectorsResource.maintaining) rules that out, so call it only under it.
        On object storage, where that lock is local to one host, Lance's 7 days are kept."""
        table = self._open()
        if table is None:
            return 0
        # On object storage no lock keeps other hosts' writers out (defs/resources.py): there a
        # file no version references may be a commit in flight, and Lance's grace period stands.
        remote = objects.is_remote_url(self.uri)
        stats = table.to_lance().cleanup_old_versions(
            older_than=indexes.PRUNE_OLDER_THAN, delete_unverified=not remote
        )
        freed: int = stats.bytes_removed
        return freed

    # -- reads -------------------------------------------------------------------------------

    def cached_vectors(self, text_sha256s: Iterable[str], model_id: str) -> dict[str, np.ndarray]:
        """Vectors already computed by `model_id` for these chunk texts, across the whole table."""
        table = self._open()
        wanted = sorted({sha for sha in text_sha256s if _HEX.match(sha)})
        if table is None or not wanted:
            return {}
        dataset = table.to_lance()
        found: dict[str, np.ndarray] = {}
        for offset in range(0, len(wanted), CACHE_LOOKUP_BATCH):
            batch = ", ".join(
                sql_string(sha) for sha in wanted[offset : offset + CACHE_LOOKUP_BATCH]
            )
            hits = dataset.to_table(
                columns=["text_sha256", "vector"],
                filter=f"model_id = {sql_string(model_id)} AND text_sha256 IN ({batch})",
            )
            vectors = (
                hits.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            )
            vectors = vectors.reshape(-1, self.dimension).astype(np.float32)
            found.update(zip(hits.column("text_sha256").to_pylist(), vectors, strict=True))
        return found

    def count(self, account: str | None = None, day: date | None = None) -> int:
        table = self._open()
        return 0 if table is None else table.count_rows(filter_clause(account=account, day=day))

    def partition_rows(self, account: str, day: date, columns: list[str]) -> list[dict[str, Any]]:
        """`columns` of one partition's rows (no vectors unless asked)."""
        table = self._open()
        if table is None:
            return []
        rows: list[dict[str, Any]] = (
            table.to_lance()
            .to_table(columns=columns, filter=filter_clause(account=account, day=day))
            .to_pylist()
        )
        return rows

    def chunk_ids(self, account: str, day: date) -> set[str]:
        """The chunk ids stored for one partition (the asset check compares them with the lake)."""
        table = self._open()
        if table is None:
            return set()
        ids = table.to_lance().to_table(
            columns=["chunk_id"], filter=filter_clause(account=account, day=day)
        )
        return set(ids.column("chunk_id").to_pylist())

    def partition_counts(self) -> dict[tuple[str, date], int]:
        table = self._open()
        if table is None:
            return {}
        counts = (
            table.to_lance()
            .to_table(columns=["account", "day"])
            .group_by(["account", "day"])
            .aggregate([([], "count_all")])
        )
        return {
            (a, d): n
            for a, d, n in zip(
                *(counts.column(c).to_pylist() for c in ("account", "day", "count_all")),
                strict=True,
            )
        }

    def disk_bytes(self) -> int:
        root = objects.location(self.uri)
        if objects.is_remote(root):
            return int(root.fs.du(root.path)) if root.exists() else 0
        return (
            sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
            if root.is_dir()
            else 0
        )

    def search_vectors(
        self, vector: np.ndarray | None, k: int, **filters: Any
    ) -> list[dict[str, Any]]:
        """Nearest chunks by cosine similarity (`_score` = 1 - cosine distance)."""
        if vector is None:
            raise ValueError("a vector search needs a query vector")
        table = self._open()
        if table is None or k <= 0:
            return []
        from lancedb.query import LanceVectorQueryBuilder

        nearest = table.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
        if not isinstance(nearest, LanceVectorQueryBuilder):  # what a vector query builds
            raise TypeError(f"a vector search built a {type(nearest).__name__}")
        query = nearest.distance_type("cosine").refine_factor(VECTOR_REFINE_FACTOR)
        query = query.ef(
            max(VECTOR_MIN_EF, 2 * k * VECTOR_REFINE_FACTOR)
        )  # never under the default
        hits = self._run(table, query, ["_distance"], k, filters)
        for hit in hits:
            hit["_score"] = 1.0 - float(hit.pop("_distance"))
        return hits

    def search_words(self, text: str | None, k: int, **filters: Any) -> list[dict[str, Any]]:
        """Chunks by BM25 over the full-text index (`_score` is BM25)."""
        self._require_text(text, "text")
        table = self._open()
        if table is None or k <= 0:
            return []
        return self._run(
            table, table.search(text, query_type="fts", fts_columns="text"), ["_score"], k, filters
        )

    @staticmethod
    def _require_text(text: str | None, mode: str) -> None:
        if not (text and text.strip()):
            raise ValueError(f"{mode} search needs query text")

    def _run(
        self,
        table: Table,
        query: LanceQueryBuilder,
        score_columns: list[str],
        k: int,
        filters: dict[str, Any],
    ) -> list[dict[str, Any]]:
        if filters.get("live_only") and "deleted_at" not in self._result_columns(table):
            filters = {
                **filters,
                "live_only": False,
            }  # a table not yet migrated marks nothing deleted
        where = filter_clause(**filters)
        if where:
            query = query.where(where, prefilter=True)
        rows: list[dict[str, Any]] = (
            query.select(self._result_columns(table) + score_columns).limit(k).to_list()
        )
        return rows

    def _result_columns(self, table: Table) -> list[str]:
        """RESULT_COLUMNS the table has: one not yet migrated (no pipeline run since an upgrade)
        is still searchable; its hits name no attachment."""
        if self._columns is None or len(self._columns) < len(RESULT_COLUMNS):
            names = set(table.schema.names)
            self._columns = [c for c in RESULT_COLUMNS if c in names]
        return self._columns


def reciprocal_rank_fusion(
    rankings: list[list[dict[str, Any]]], k: int, constant: int = RRF_K
) -> list[dict[str, Any]]:
    """The chunks of several best-first rankings, ordered by reciprocal rank fusion: each ranking
    adds 1 / (constant + rank) (rank from 0, as LanceDB's RRFReranker) to a chunk's `_score`."""
    fused: dict[tuple[str, str], dict[str, Any]] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking):
            key = (hit["account"], hit["chunk_id"])
            entry = fused.setdefault(key, {**hit, "_score": 0.0})
            entry["_score"] += 1.0 / (constant + rank)
    return sorted(fused.values(), key=lambda hit: -hit["_score"])[:k]


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    vector = row.get("vector")
    if isinstance(vector, np.ndarray):
        row = {**row, "vector": vector.astype(np.float32).tolist()}
    return row
