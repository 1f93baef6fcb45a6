"""The scale section's search figures: a LanceDB table of C rows (the largest N's real chunks
repeated, synthetic random unit vectors), its indexes built once and timed, then hybrid search
timed as the search section does it (`bench.search.measure`)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import numpy as np

from bench import corpus, search
from bench.fetch import SLUG
from bench.mailbox import Workbench, window_days
from bench.scale_stage import unit_vectors
from bench.sections import Figure

WRITE_BATCH = 20_000  # rows per LanceDB append


def label(n: int) -> str:
    """200000 -> 200k, 1000000 -> 1m, 400 -> 400: the names of ratio and search keys."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def chunks_by_day(data_dir: Path) -> dict[date, list[dict]]:
    """The email_chunks rows of the lake at `data_dir`, by day (days without a partition left out)."""
    from mail_pipeline.storage.lake import Lake

    lake, days = Lake(data_dir / "lake"), {}
    for day in window_days():
        if lake.partition_file("email_chunks", SLUG, day).exists():
            days[day] = lake.read_partition("email_chunks", SLUG, day).to_pylist()
    return {day: rows for day, rows in days.items() if rows}


def write_store(store_dir: Path, days: dict[date, list[dict]], rows: int, vectors_id: str) -> float:
    """`rows` rows at store_dir/lancedb, unindexed: copies of the chunks (ids made unique per
    copy) with random unit vectors. Returns the seconds the writes took."""
    import lancedb

    from mail_pipeline.stages.embeddings import vector_rows
    from mail_pipeline.storage.vectors import VectorStore

    rng, batch, copy = np.random.default_rng(0), [], 0
    started = time.perf_counter()
    # The first day through the store, which creates the table with its schema; then appends.
    first, chunks = next(iter(days.items()))
    take = chunks[:rows]
    written = VectorStore(store_dir / "lancedb").replace_partition(
        SLUG, first, vector_rows(take, unit_vectors(rng, len(take)), SLUG, first, vectors_id)
    )
    table = lancedb.connect(store_dir / "lancedb").open_table(VectorStore.TABLE)
    names = set(table.schema.names)
    while written < rows:
        for day, chunks in days.items():
            if copy == 0 and day == first:
                continue
            take = chunks[: rows - written]
            copies = [{**c, "chunk_id": f"{c['chunk_id']}~{copy}"} for c in take]
            for row in vector_rows(copies, unit_vectors(rng, len(copies)), SLUG, day, vectors_id):
                batch.append({k: v for k, v in row.items() if k in names})
            written += len(take)
            if len(batch) >= WRITE_BATCH or written >= rows:
                table.add(batch)
                batch = []
            if written >= rows:
                break
        copy += 1
    return time.perf_counter() - started


def build_indexes(store_dir: Path, rows: int) -> float:
    """Every index the store keeps at this size (scalar, full-text, and HNSW from
    VECTOR_INDEX_MIN_ROWS), built once over the whole table: seconds."""
    import lancedb

    from mail_pipeline.storage.index_policy import VECTOR_INDEX_MIN_ROWS
    from mail_pipeline.storage.indexes import scalar_indexes, vector_index
    from mail_pipeline.storage.vectors import VectorStore

    table = lancedb.connect(store_dir / "lancedb").open_table(VectorStore.TABLE)
    wanted = dict(scalar_indexes())
    if rows >= VECTOR_INDEX_MIN_ROWS:
        wanted["vector"] = vector_index()
    started = time.perf_counter()
    for column, config in wanted.items():
        table.create_index(column, config=config, replace=True)
    return time.perf_counter() - started


def measure(bench: Workbench, data_dir: Path, counts: list[int]) -> dict[str, float]:
    days = chunks_by_day(data_dir)
    if not days:
        raise RuntimeError(f"no chunks in {data_dir / 'lake'} to build the search store from")
    built = corpus.Corpus(data_dir, 0, days, 0.0, 0.0)
    texts = search.queries(bench, built)
    vectors_id = corpus.embedder(bench).vectors_id
    figures: dict[str, float] = {}
    for rows in counts:
        name = label(rows)
        store_dir = bench.scratch_dir(f"scale-search-{rows}")
        write_s = write_store(store_dir, days, rows, vectors_id)
        index_s = build_indexes(store_dir, rows)
        timed = search.measure(bench, store_dir, texts)
        figures.update(
            {
                f"scale_search_write_s_{name}": write_s,
                f"scale_search_index_build_s_{name}": index_s,
                f"search_hybrid_p50_ms_{name}": timed["search_hybrid_p50_ms"],
                f"search_hybrid_p95_ms_{name}": timed["search_hybrid_p95_ms"],
            }
        )
        print(
            f"  search store of {rows:,} chunks: written in {write_s:.1f} s, indexes built in "
            f"{index_s:.1f} s; hybrid p50 {timed['search_hybrid_p50_ms']:.1f} ms, "
            f"p95 {timed['search_hybrid_p95_ms']:.1f} ms",
            flush=True,
        )
    return figures


def figures_for(counts: list[int]) -> tuple[Figure, ...]:
    return tuple(
        figure
        for rows in counts
        for name in (label(rows),)
        for figure in (
            Figure(f"scale_search_write_s_{name}", f"{rows:,} chunks: written, no index", "s", 1),
            Figure(
                f"scale_search_index_build_s_{name}",
                f"{rows:,} chunks: every index built once",
                "s",
                1,
            ),
            Figure(
                f"search_hybrid_p50_ms_{name}", f"{rows:,} chunks: hybrid search, median", "ms", 1
            ),
            Figure(
                f"search_hybrid_p95_ms_{name}",
                f"{rows:,} chunks: hybrid search, 95th percentile",
                "ms",
                1,
            ),
        )
    )
