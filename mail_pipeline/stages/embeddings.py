"""email_embeddings: chunk vectors in LanceDB, with the full-text index; cached by chunk text."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from mail_pipeline.indexing.cache import DocumentEncoder, embed_with_cache
from mail_pipeline.indexing.remote import Indexed
from mail_pipeline.stages.outcome import PartitionOutcome
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.vectors import VectorStore


def vector_rows(
    chunks: list[dict[str, Any]], vectors: np.ndarray, account: str, day: date, vectors_id: str
) -> list[dict[str, Any]]:
    """LanceDB rows: each chunk with its partition, the embedder's vectors id and its vector."""
    return [
        {**c, "account": account, "day": day, "model_id": vectors_id, "vector": v}
        for c, v in zip(chunks, vectors)
    ]


# What a stored row shares with the chunk it was made from (the vector follows text and model).
COMPARED = [
    "chunk_id",
    "text_sha256",
    "model_id",
    "thread_id",
    "subject",
    "sender",
    "sent_at",
    "deleted_at",
]


def unchanged(
    store: VectorStore, chunks: list[dict[str, Any]], account: str, day: date, vectors_id: str
) -> bool:
    """The partition already holds exactly these chunks, with the same metadata and model."""

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c] for c in COMPARED)

    wanted = {key({**c, "model_id": vectors_id}) for c in chunks}
    stored = store.partition_rows(account, day, COMPARED)
    return len(stored) == len(chunks) and {key(r) for r in stored} == wanted


class PartitionIndexer(Protocol):
    """Writes a partition's vectors elsewhere (remote.ServiceIndexer: the search service); None
    where it did not, and the step writes them itself."""

    def index(self, account: str, day: date, chunks: pa.Table) -> Indexed | None: ...


def embed_chunks(
    chunks: list[dict[str, Any]],
    account: str,
    day: date,
    embedder: DocumentEncoder,
    writing: Callable[[], AbstractContextManager[VectorStore]],
    before_commit: Callable[[], None] = lambda: None,
) -> tuple[int, int]:
    """Replace the partition's LanceDB rows with these chunks and their vectors (`writing` opens the
    store for writes); returns the rows stored and how many texts the model embedded. Chunks that
    left the partition (an erased message) also leave the disk, old versions included.
    `before_commit` may raise to leave the store as it was once the vectors are ready."""
    with writing() as store:
        if unchanged(store, chunks, account, day, embedder.vectors_id):
            return len(chunks), 0  # a run for flag changes: nothing to rewrite, no new version
        vectors, embedded = embed_with_cache(
            [(c["text"], c["text_sha256"]) for c in chunks], embedder, store
        )
        gone = store.chunk_ids(account, day) - {c["chunk_id"] for c in chunks}
        before_commit()
        stored = store.replace_partition(
            account, day, vector_rows(chunks, vectors, account, day, embedder.vectors_id)
        )
        if gone:
            store.erase_deleted()
    return stored, embedded


def embed_day(
    lake: Lake,
    account: str,
    day: date,
    embedder: DocumentEncoder,
    writing: Callable[[], AbstractContextManager[VectorStore]],
    indexer: PartitionIndexer | None = None,
) -> PartitionOutcome:
    """The partition's vectors written by `indexer` where it does, else by this process."""
    table = lake.read_partition("email_chunks", account, day)
    done = indexer.index(account, day, table) if indexer else None
    if done is None:
        stored, embedded = embed_chunks(table.to_pylist(), account, day, embedder, writing)
        by = embedder.embedded_by if embedded else "nothing to embed"
        done = Indexed(stored, embedded, embedder.vectors_id, by)
    reused = table.num_rows - done.embedded
    return PartitionOutcome(
        account,
        day,
        rows=done.rows,
        summary=(
            f"{done.rows} chunk vectors stored; {done.embedded} embedded by the model, {reused} reused from the cache"
        ),
        figures={
            "chunks_embedded": done.embedded,
            "chunks_from_cache": reused,
            "vectors_id": done.vectors_id,
            "embedded_by": done.embedded_by,
        },
    )
