"""`python -m bench.scale_stage STAGE DATA_DIR RESULT_JSON [SAMPLE]`: one stage of the scale
section over the window of account `bench` in DATA_DIR, in a process of its own so that its
peak memory is this stage's alone. Writes {"seconds", "count", "peak_mb"} to RESULT_JSON; the Fernet key and MAIL_PIPELINE_TODAY come in the environment, never on argv."""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from bench.fetch import SLUG, ingest_window
from bench.mailbox import window_days

DIMENSION = 384


class RandomEmbedder:
    """Random unit vectors in place of the model (~100 chunks/s here): the vectors stage writes
    every chunk of N messages to LanceDB at disk and index cost, without the model's."""

    model_id = vectors_id = "bench-random-unit-vectors"
    dimension = DIMENSION
    embedded_by = "random unit vectors (the bench's stand-in for the model)"

    def __init__(self, seed: int = 0):
        self._rng = np.random.default_rng(seed)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return unit_vectors(self._rng, len(texts))


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def lake(data_dir: Path):
    from mail_pipeline.storage.lake import Lake

    return Lake(data_dir / "lake")


def model():
    from mail_pipeline.indexing.embedder import shared_embedder
    from mail_pipeline.settings import Settings

    return shared_embedder(*Settings().embedder_config)


def fetch(data_dir: Path, _sample: int) -> tuple[float, int]:
    return ingest_window(data_dir)


def per_day(step: Callable, count: Callable, say: bool = False) -> tuple[float, int]:
    """`step(day)` over the window, timed; `count(outcome)` summed; `say`: each day's time printed
    (a cost that grows with what is already stored shows as days that take longer and longer)."""
    started, total = time.perf_counter(), 0
    for day in window_days():
        day_started = time.perf_counter()
        done = count(step(day))
        total += done
        if say:
            seconds = time.perf_counter() - day_started
            print(f"    {day}: {done:,} in {seconds:.2f} s, {total:,} so far", flush=True)
    return time.perf_counter() - started, total


def emails(data_dir: Path, _sample: int) -> tuple[float, int]:
    from mail_pipeline.extract.pool import ExtractionPool
    from mail_pipeline.stages.emails import parse_day

    with ExtractionPool() as pool:  # attachment text, as the emails stage reads it
        return per_day(lambda day: parse_day(lake(data_dir), SLUG, day, pool), lambda o: o.rows)


def chunks(data_dir: Path, _sample: int) -> tuple[float, int]:
    from mail_pipeline.stages.chunks import chunk_day

    embedder = model()  # its tokenizer only: the weights are not loaded
    return per_day(
        lambda day: chunk_day(
            lake(data_dir), SLUG, day, embedder.tokens, embedder.max_tokens, embedder.model_id
        ),
        lambda o: o.figures["emails"],
    )


def vectors(data_dir: Path, _sample: int) -> tuple[float, int]:
    """email_embeddings' work path (`embed_day`) with random vectors: LanceDB's share."""
    from mail_pipeline.stages.embeddings import embed_day
    from mail_pipeline.storage.vectors import VectorStore

    # the vector index policy's decisions (whole builds, segments) between the days' lines
    logging.basicConfig(format="    %(message)s")
    logging.getLogger("mail_pipeline.storage.indexes").setLevel(logging.INFO)
    store, embedder = VectorStore(data_dir / "lancedb"), RandomEmbedder()
    return per_day(
        lambda day: embed_day(lake(data_dir), SLUG, day, embedder, lambda: nullcontext(store)),  # type: ignore[arg-type]
        lambda o: o.rows,
        say=True,
    )


def embed(data_dir: Path, sample: int) -> tuple[float, int]:
    """The model on the first `sample` chunk texts of the lake (the model load not timed)."""
    texts: list[str] = []
    for day in window_days():
        table = lake(data_dir).read_partition("email_chunks", SLUG, day)
        texts += table.column("text").to_pylist()[: sample - len(texts)]
        if len(texts) >= sample:
            break
    embedder = model()
    embedder.encode(["warm-up"])
    started = time.perf_counter()
    embedder.encode(texts)
    return time.perf_counter() - started, len(texts)


STAGES: dict[str, Callable[[Path, int], tuple[float, int]]] = {
    "fetch": fetch,
    "emails": emails,
    "chunks": chunks,
    "vectors": vectors,
    "embed": embed,
}


def peak_rss_mb() -> float:
    """The largest peak of this process and of the workers it reaped, in MB. Not `wait4` in the
    parent: a child's ru_maxrss keeps the high-water mark of the address space it was forked
    from, the bench's own. VmHWM counts this process's own address space from exec on."""
    status = Path("/proc/self/status").read_text()
    own = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def main(argv: list[str]) -> int:
    stage, data_dir, result = argv[0], Path(argv[1]), Path(argv[2])
    seconds, count = STAGES[stage](data_dir, int(argv[3]) if len(argv) > 3 else 0)
    result.write_text(json.dumps({"seconds": seconds, "count": count, "peak_mb": peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
