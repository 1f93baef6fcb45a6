"""`python -m bench.scale_index [--rows 20000] [--only 1,3] [--ef 40,80]`: the vector index's
build time per row and its recall@10 against exact search, for a few index settings, on one table
(the profile behind `storage/indexes.vector_index`).

Random unit vectors make every index look bad (in 384 dimensions all their distances are nearly
equal), and real ones are out of reach here: loading the model took 198 s and embedding is about
100 chunks/s on these cores unloaded. So the vectors are synthetic but clustered, as sentence
embeddings are: CLUSTERS centres in a RANK-dimensional subspace, each row a centre plus spread
in that subspace plus a little full-dimensional noise, normalized. `--random` uses unit random
vectors instead (the scale section's search table). Queries are 100 further rows of the same
kind. Each setting is built on the same table and searched as `VectorStore.search_vectors`
searches (cosine, its refine factor, optionally a query `ef`); recall@10 is the share of the
exact 10 nearest (numpy, cosine) it returns. Printed only: the chosen figures go in by hand.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.scale_stage import DIMENSION, unit_vectors

QUERIES = 100
K = 10
CLUSTERS = 1_000
RANK = 48


def clustered(n: int, rng: np.random.Generator, dimension: int = DIMENSION) -> np.ndarray:
    basis = rng.standard_normal((RANK, dimension)).astype(np.float32)
    centres = rng.standard_normal((CLUSTERS, RANK)).astype(np.float32)
    low = centres[rng.integers(0, CLUSTERS, n)] + 0.5 * rng.standard_normal((n, RANK))
    vectors = low @ basis + 0.3 * rng.standard_normal((n, dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def settings() -> dict[str, Callable[[], Any]]:
    from lancedb.index import HnswSq, IvfPq

    from mail_pipeline.storage.indexes import vector_index

    return {
        "HNSW-SQ 1 partition, m 20, ef_construction 300 (LanceDB's defaults, before)": lambda: (
            HnswSq(distance_type="cosine", num_partitions=1)
        ),
        "HNSW-SQ 1 partition, m 16, ef_construction 100": lambda: HnswSq(
            distance_type="cosine", num_partitions=1, m=16, ef_construction=100
        ),
        "vector_index(): HNSW-SQ 1 partition, m 20, ef_construction 150": vector_index,
        "IVF-PQ sqrt(rows) partitions, 48 sub-vectors": lambda: IvfPq(
            distance_type="cosine", num_sub_vectors=48
        ),
    }


def recall(
    table: Any, queries: np.ndarray, exact: np.ndarray, ef: int | None
) -> tuple[float, float]:
    """(recall@K, median ms per query) of the store's vector query on `table`."""
    from mail_pipeline.storage.vectors import VECTOR_REFINE_FACTOR

    found, times = 0, []
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        builder = table.search(query, vector_column_name="vector").distance_type("cosine")
        builder = builder.refine_factor(VECTOR_REFINE_FACTOR)
        if ef is not None:
            builder = builder.ef(ef)
        ids = builder.limit(K).to_arrow().column("id").to_pylist()
        times.append(time.perf_counter() - started)
        found += len(set(ids) & set(truth.tolist()))
    return found / (K * len(queries)), float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--random", action="store_true", help="random unit vectors instead")
    parser.add_argument("--only", default="", help="comma-separated setting numbers (1-based)")
    parser.add_argument("--ef", default="", help="comma-separated query ef values to try too")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-scale-index"))
    args = parser.parse_args()

    import lancedb
    import pyarrow as pa

    rng = np.random.default_rng(1)
    make = (lambda n: unit_vectors(rng, n)) if args.random else (lambda n: clustered(n, rng))
    vectors, queries = make(args.rows), make(QUERIES)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]
    dimension = vectors.shape[1]
    table = lancedb.connect(args.out).create_table(
        "vectors",
        pa.table(
            {
                "id": pa.array(np.arange(args.rows)),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1)), dimension
                ),
            }
        ),
        mode="overwrite",
    )
    chosen = {int(i) for i in args.only.split(",") if i}
    efs: list[int | None] = [None, *(int(e) for e in args.ef.split(",") if e)]
    print(f"  {args.rows:,} rows of {dimension} dimensions, {QUERIES} queries, recall@{K}")
    for number, (name, config) in enumerate(settings().items(), 1):
        if chosen and number not in chosen:
            continue
        started = time.perf_counter()
        table.create_index("vector", config=config(), replace=True)
        seconds = time.perf_counter() - started
        for ef in efs:
            found, ms = recall(table, queries, exact, ef)
            print(
                f"  {number}. {name}: build {seconds:.1f} s = {seconds / args.rows * 1000:.2f} "
                f"ms/row; query ef {ef or 'default'}: recall@{K} {found:.3f}, "
                f"median {ms:.1f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
