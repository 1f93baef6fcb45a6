"""The indexes of the LanceDB table and their upkeep after each write: full-text and scalar
indexes fold new rows in (cheap: 0.09 s for 9,000 rows), the vector index follows
`index_policy` (segments and whole builds), and small fragments are compacted.

Upkeep is best effort: rows an index does not cover yet are still searched, by a scan, so a lost
race with a parallel writer only costs speed until the next write."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from mail_pipeline.storage.commits import RETRYABLE, with_retries
from mail_pipeline.storage.index_policy import Action, Decision, Policy

if TYPE_CHECKING:  # lancedb is imported where used (see vectors.py)
    from lancedb.index import HnswSq
    from lancedb.table import Table

log = logging.getLogger(__name__)

VECTOR_COLUMN = "vector"
# Compaction merges the small fragments every partition write leaves, and every search visits
# each fragment: at 56k chunks in 30 fragments (a 30-day backfill) a vector search took 25.5 ms
# and a words search 18.8, in one fragment 13.5 and 13.0 (compacting took 1.9 s). Versions
# older than PRUNE_OLDER_THAN are pruned then (readers of older versions would fail, and none
# lives that long).
COMPACT_AT_FRAGMENTS = 8
PRUNE_OLDER_THAN = timedelta(hours=1)
# Lance's index statistics warn, once per process, that they will stop carrying the centroids;
# the segment sizes read here need none, and opting in now keeps them out of memory and the log.
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")


def scalar_indexes() -> dict[str, Any]:
    """The full-text and scalar indexes every table keeps. English stemming and stop words suit
    most of the mail seen so far; words are lowercased and accents folded ("Zürich" finds "zurich")."""
    from lancedb.index import FTS, Bitmap, BTree

    text = FTS(
        base_tokenizer="simple",
        language="English",
        stem=True,
        remove_stop_words=True,
        ascii_folding=True,
    )
    return {"text": text, "account": Bitmap(), "day": BTree(), "text_sha256": BTree()}


# Above `index_policy.VECTOR_INDEX_MIN_ROWS` an HNSW graph (one IVF partition, as LanceDB advises
# for tables of this size) keeps vector search near-constant: at 56k chunks 5 ms instead of 40
# (bench/RESULTS.md, search section). Scalar quantization costs a little accuracy; re-ranking
# twice the asked-for candidates on the full vectors wins it back (recall@50 against exact
# search 1.00 in the measurement behind this).
# Building the graph is the vector index's cost (350 s at 50k rows with LanceDB's defaults, m 20
# and ef_construction 300) and grows with ef_construction, the candidates kept per inserted row;
# the recall it buys is cheaper to get at query time (`vectors.VECTOR_MIN_EF`). On 20,000
# clustered synthetic vectors (`python -m bench.scale_index`, 2 cores at load 9-13): defaults
# 4.69 ms/row and recall@10 0.838 (0.947 with query ef 64); ef_construction 150 2.43 ms/row and
# 0.838 (0.952); m 16 and ef_construction 100 1.88 ms/row and 0.785 (0.915).
VECTOR_M = 20
VECTOR_EF_CONSTRUCTION = 150


def vector_index() -> HnswSq:
    from lancedb.index import HnswSq

    return HnswSq(
        distance_type="cosine",
        num_partitions=1,
        m=VECTOR_M,
        ef_construction=VECTOR_EF_CONSTRUCTION,
    )


def maintain(table: Table, policy: Policy) -> Decision | None:
    """Create missing scalar indexes, fold new rows into them, compact when fragmented, and
    carry out the policy's decision for the vector index (returned; None if upkeep failed)."""
    try:
        indexes = {index.columns[0]: index.name for index in table.list_indices()}
        for column, config in scalar_indexes().items():
            if column not in indexes:
                table.create_index(column, config=config, replace=False)
        dataset = table.to_lance()
        if len(dataset.get_fragments()) >= COMPACT_AT_FRAGMENTS:
            # Not `table.optimize()`: it also folds every unindexed row into the vector index,
            # whose upkeep is the policy's.
            dataset.optimize.compact_files()
            dataset.cleanup_old_versions(older_than=PRUNE_OLDER_THAN)
        scalar = [name for column, name in indexes.items() if column != VECTOR_COLUMN]
        if scalar:
            dataset.optimize.optimize_indices(index_names=scalar)
        return refresh_vector_index(table, policy, indexes.get(VECTOR_COLUMN))
    except Exception as error:
        # Parallel writers race on index commits; the winner just did the same upkeep, and
        # rows left out of an index are still searched by a scan until the next write.
        level = logging.INFO if RETRYABLE.search(str(error)) else logging.WARNING
        log.log(level, "vector index upkeep skipped: %s", error)
        return None


def vector_segments(table: Table, name: str | None) -> tuple[list[int], int]:
    """Rows per segment of the vector index `name` (its base, the last whole build, first) and
    the rows it does not cover; ([], every row) without one."""
    if name is None:
        return [], table.count_rows()
    stats = table.to_lance().stats.index_stats(name)
    return list(stats["num_indexed_rows_per_delta"]), int(stats["num_unindexed_rows"])


def refresh_vector_index(table: Table, policy: Policy, name: str | None) -> Decision:
    """Ask the policy about the vector index `name` (None: there is none) and do what it says."""
    segments, unindexed = vector_segments(table, name)
    rows = table.count_rows()
    decision = policy.decide(rows, segments, unindexed)
    if decision.action is not Action.KEEP:
        log.info("vector index: %s (%s)", decision.action.value, decision.reason)
    if decision.action is Action.BUILD:
        table.create_index(VECTOR_COLUMN, config=vector_index(), replace=True)
    elif decision.action is Action.ADD and name is not None:
        table.to_lance().optimize.optimize_indices(
            index_names=[name], num_indices_to_merge=decision.merge
        )
    elif decision.action is Action.DROP and name is not None:
        table.drop_index(name)
    return decision


def rebuild(table: Table, policy: Policy) -> None:
    """Every index built whole from the table's rows (after retention erased some): the scalar
    ones, and the vector index if the table is still big enough for one."""
    for index in table.list_indices():
        if index.columns == [VECTOR_COLUMN] and table.count_rows() < policy.min_rows:
            with_retries(partial(table.drop_index, index.name), f"drop index {index.name}")
    wanted = dict(scalar_indexes())
    if table.count_rows() >= policy.min_rows:
        wanted[VECTOR_COLUMN] = vector_index()
    for column, config in wanted.items():
        with_retries(
            partial(table.create_index, column, config=config, replace=True), f"index {column}"
        )
