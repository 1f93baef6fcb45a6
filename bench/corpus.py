"""What the embed and search sections share, built once per run on first use: the bench mailbox
parsed, merged and chunked as the pipeline does it (with its `emails` lake and DuckDB catalog),
the model, the sample of distinct chunks it embeds, their real vectors, and a LanceDB store of
every chunk written through the `email_embeddings` work path."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.mailbox import Workbench

if TYPE_CHECKING:
    from mail_pipeline.indexing import Embedder

ACCOUNT = "bench"


@dataclass
class Corpus:
    data_dir: Path  # lake/ (emails), warehouse.duckdb (views), lancedb/ once `full_store` ran
    emails: int
    days: dict[date, list[dict]]  # chunk rows per day, in the order email_chunks stores them
    parse_s: float  # parse_all on 2 workers + attachment text + email_row + merge_copies, the whole mailbox
    chunk_s: float  # chunk_rows (chunk_email) of every email, one core

    @property
    def produced(self) -> int:
        return sum(len(chunks) for chunks in self.days.values())

    @property
    def distinct(self) -> int:
        """Chunks the cache sends to the model: each distinct text once, then its stored vector."""
        return len({c["text_sha256"] for chunks in self.days.values() for c in chunks})

    @property
    def distinct_bodies(self) -> int:
        """Distinct chunk texts with the header line (subject, sender, date) dropped: what a cache
        keyed on the body alone would send to the model, its bound on this mailbox."""
        return len({c["text"].split("\n", 1)[-1] for chunks in self.days.values() for c in chunks})


def shared(bench: Workbench, key: str, build: Callable[[], Any]) -> Any:
    if key not in bench.shared:
        bench.shared[key] = build()
    return bench.shared[key]


def settings():
    from mail_pipeline.settings import Settings

    return Settings()


def embedder(bench: Workbench) -> Embedder:
    """The model the `email_embeddings` asset uses (its resource's cached instance), loaded."""

    def load() -> Embedder:
        from mail_pipeline.indexing.embedder import shared_embedder

        config = settings()
        model = shared_embedder(*config.embedder_config)
        # weights, threads and the first graph compile: not timed anywhere
        model.encode(["warm-up"])
        return model

    return shared(bench, "embedder", load)


def _raw_meta(message, uid: int) -> dict:
    return {
        "flags": [],
        "internaldate": message.internaldate,
        "folder": message.folder,
        "uidvalidity": 1,
        "uid": uid,
        "size": len(message.raw),
        "sha256": hashlib.sha256(message.raw).hexdigest(),
    }


def _build(bench: Workbench) -> Corpus:
    import pyarrow as pa

    from mail_pipeline.extract.messages import extract_texts
    from mail_pipeline.extract.pool import ExtractionPool
    from mail_pipeline.message import records
    from mail_pipeline.stages.chunks import chunk_rows
    from mail_pipeline.stages.emails import distinct_emails
    from mail_pipeline.storage import catalog
    from mail_pipeline.storage.lake import Lake
    from mail_pipeline.storage.schemas import EMAILS

    messages = bench.messages
    model = embedder(bench)
    started = time.perf_counter()
    by_day: dict[date, list[dict]] = {}
    parsed = list(records.parse_all([m.raw for m in messages], workers=2))
    with ExtractionPool() as pool:  # attachment text, as the emails stage reads it
        texts = extract_texts(zip(parsed, (m.raw for m in messages)), pool)
    for uid, (email, message, text) in enumerate(zip(parsed, messages, texts, strict=True), 1):
        row = text.add_to(records.email_row(email, _raw_meta(message, uid)))
        by_day.setdefault(message.internaldate.date(), []).append(row)
    for day, rows in by_day.items():
        by_day[day] = distinct_emails(rows, {}, {})[0]
    parse_s = time.perf_counter() - started

    data_dir = bench.scratch_dir("corpus")
    lake = Lake(data_dir / "lake")
    for day, rows in by_day.items():
        lake.write_partition("emails", ACCOUNT, day, pa.Table.from_pylist(rows, schema=EMAILS))
    catalog.ensure_catalog(data_dir / "warehouse.duckdb", lake)

    started = time.perf_counter()
    days = {
        day: [c for email in rows for c in chunk_rows(email, model.tokens, model.max_tokens)]
        for day, rows in sorted(by_day.items())
    }
    chunk_s = time.perf_counter() - started
    return Corpus(data_dir, sum(map(len, by_day.values())), days, parse_s, chunk_s)


def corpus(bench: Workbench) -> Corpus:
    def build() -> Corpus:
        print(f"  chunking the mailbox ({bench.n:,} messages)", flush=True)
        built = _build(bench)
        print(
            f"  {built.emails:,} emails -> {built.produced:,} chunks ({built.distinct:,} distinct): "
            f"parse {built.parse_s:.1f} s, chunk {built.chunk_s:.1f} s",
            flush=True,
        )
        return built

    return shared(bench, "corpus", build)


def sample(bench: Workbench) -> dict[date, list[dict]]:
    """The chunks of the first days, in stored order, up to the `bench.embed_sample`-th distinct
    text: whole partitions as the stage meets them, the last one cut there."""

    def build() -> dict[date, list[dict]]:
        picked: dict[date, list[dict]] = {}
        seen: set[str] = set()
        for day, chunks in corpus(bench).days.items():
            for chunk in chunks:
                if len(seen) == bench.embed_sample and chunk["text_sha256"] not in seen:
                    return picked
                seen.add(chunk["text_sha256"])
                picked.setdefault(day, []).append(chunk)
        return picked

    return shared(bench, "sample", build)


def distinct_texts(partitions: dict[date, list[dict]]) -> dict[str, str]:
    """text_sha256 -> text, first occurrence order."""
    texts: dict[str, str] = {}
    for chunks in partitions.values():
        for chunk in chunks:
            texts.setdefault(chunk["text_sha256"], chunk["text"])
    return texts


def sample_vectors(bench: Workbench) -> dict[str, np.ndarray]:
    """Real vectors of the sample's distinct texts (the embed section stores the ones it made)."""

    def build() -> dict[str, np.ndarray]:
        texts = distinct_texts(sample(bench))
        print(
            f"  embedding the sample ({len(texts):,} distinct chunks) for real vectors", flush=True
        )
        return dict(zip(texts, embedder(bench).encode(list(texts.values())), strict=True))

    return shared(bench, "sample_vectors", build)


# Per component, on 384 dimensions: a perturbed copy keeps cosine about 0.93 to its real vector.
PERTURBATION = 0.02


class RecyclingEmbedder:
    """The model's stand-in for rows outside the sample: a sample text gets its own real vector,
    any other text the next real vector in turn, perturbed (cosine about 0.93 to it) so that every
    row is distinct, as real chunks are: a vector index builds and searches over near neighbours,
    not over exact copies. Counts the texts it is asked to embed."""

    def __init__(self, real: Embedder, vectors: dict[str, np.ndarray]):
        self.model_id, self.vectors_id, self.dimension = (
            real.model_id,
            real.vectors_id,
            real.dimension,
        )
        self._real = vectors
        self._cycle = np.stack(list(vectors.values()))
        self._next = 0
        self.embedded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            vector = self._real.get(hashlib.sha256(text.encode()).hexdigest())
            if vector is None:
                noise = np.random.default_rng(self._next).normal(0, PERTURBATION, self.dimension)
                vector = self._cycle[self._next % len(self._cycle)] + noise.astype(np.float32)
                vector /= np.linalg.norm(vector)
                self._next += 1
            out[i] = vector
        self.embedded += len(texts)
        return out


def embed_partitions(
    days: Sequence[date], read: Callable[[date], list[dict]], model, vectors_dir: Path
) -> int:
    """The email_embeddings stage for these days of ACCOUNT (`stages.embeddings.embed_chunks`):
    the day's chunks looked up in the cache, what it misses embedded, one replace_partition per day.
    Returns how many texts the model embedded."""
    from mail_pipeline.stages.embeddings import embed_chunks
    from mail_pipeline.storage.vectors import VectorStore

    store, embedded = VectorStore(vectors_dir / "lancedb"), 0
    for day in days:
        embedded += embed_chunks(read(day), ACCOUNT, day, model, lambda: nullcontext(store))[1]
    return embedded


@dataclass(frozen=True)
class StoreBuild:
    data_dir: Path  # its lancedb/ holds every chunk of the corpus
    rows: int
    embedded: int  # texts embed_with_cache sent to the (stand-in) model
    seconds: float


def full_store(bench: Workbench) -> StoreBuild:
    """Every chunk of the corpus in LanceDB at `corpus.data_dir / "lancedb"`, written day by day
    through embed_partitions with the RecyclingEmbedder (~20 chunks/s for real would take an hour
    at N = 20,000 on this CPU)."""

    def build() -> StoreBuild:
        built = corpus(bench)
        stand_in = RecyclingEmbedder(embedder(bench), sample_vectors(bench))
        print(
            f"  writing {built.produced:,} chunks into LanceDB over {len(built.days)} partitions",
            flush=True,
        )
        started = time.perf_counter()
        embedded = embed_partitions(
            list(built.days), built.days.__getitem__, stand_in, built.data_dir
        )
        seconds = time.perf_counter() - started
        if embedded != stand_in.embedded:
            raise RuntimeError(
                f"embed_with_cache reported {embedded} texts embedded, the model got {stand_in.embedded}"
            )
        from mail_pipeline.storage.vectors import VectorStore

        rows = VectorStore(built.data_dir / "lancedb").count()
        if rows != built.produced:
            raise RuntimeError(f"the store holds {rows} rows, the corpus {built.produced} chunks")
        return StoreBuild(built.data_dir, rows, embedded, seconds)

    return shared(bench, "full_store", build)
