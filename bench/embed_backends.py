"""embed: the runtime `MAIL_PIPELINE_EMBEDDING_BACKEND=auto` chose against every other runtime it
could have chosen here (torch fp32 always), bare `encode` of the same sample, alternating."""

from __future__ import annotations

import time

import numpy as np

from bench.sections import Figure

RUNTIMES = {
    "torch fp32": ("torch", "fp32"),
    "openvino fp32": ("openvino", "fp32"),
    "torch bf16": ("torch", "bf16"),
}


def slug(name: str) -> str:
    return name.replace(" ", "_")


def rivals(model) -> tuple[dict[str, object], dict[str, str]]:
    """The other runtimes, loaded and warmed up; and why each missing one is missing."""
    from mail_pipeline.indexing import openvino_encoder
    from mail_pipeline.indexing.embedder import Embedder, choose_precision

    missing = {}
    if not openvino_encoder.available():
        missing["openvino fp32"] = "n/a (the openvino extra is not installed)"
    if choose_precision("auto", model.device) != "bf16":
        missing["torch bf16"] = "n/a (no native bf16 here)"
    loaded = {}
    for name, (backend, precision) in RUNTIMES.items():
        if name == model.choice.runtime.name or name in missing:
            continue
        rival = Embedder(
            model.model_id,
            backend=backend,
            precision=precision,
            batch_size=model.batch_size,
            cache_dir=model.cache_dir,
        )
        rival.encode(["warm-up"])  # conversion, weights, threads: not timed
        loaded[name] = rival
    return loaded, missing


def rival_pass(rival, texts: list[str]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = rival.encode(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def figures(
    chosen: str, rates: dict[str, float], vectors: dict[str, np.ndarray], missing: dict[str, str]
) -> dict:
    """The section's backend figures from each runtime's best rate and its vectors."""
    reference = vectors["torch fp32"]
    out: dict[str, float | str] = {
        "embed_backend": chosen,
        "embed_speedup_vs_torch_fp32": rates[chosen] / rates["torch fp32"],
        "embed_backend_min_cosine": float(np.min(np.sum(vectors[chosen] * reference, axis=1))),
    }
    for name in RUNTIMES:
        if name in missing:
            out[f"embed_{slug(name)}_chunks_per_s"] = out[f"embed_{slug(name)}_min_cosine"] = (
                missing[name]
            )
        else:
            out[f"embed_{slug(name)}_chunks_per_s"] = rates[name]
            out[f"embed_{slug(name)}_min_cosine"] = float(
                np.min(np.sum(vectors[name] * reference, axis=1))
            )
    return out


FIGURES = (
    Figure(
        "embed_backend",
        "runtime `MAIL_PIPELINE_EMBEDDING_BACKEND=auto` chose (the stage and ceiling above use it)",
    ),
    Figure(
        "embed_speedup_vs_torch_fp32", "its bare `encode` rate / torch fp32's, same sample", "", 2
    ),
    Figure("embed_backend_min_cosine", "its vectors: lowest cosine to torch fp32's", "", 5),
    *(
        figure
        for name in RUNTIMES
        for figure in (
            Figure(f"embed_{slug(name)}_chunks_per_s", f"bare `encode`, {name}", "chunks/s", 1),
            Figure(f"embed_{slug(name)}_min_cosine", f"{name}: lowest cosine to torch fp32", "", 5),
        )
    ),
)
