"""One search query at a time through a TorchScript-frozen copy of the model's transformer.

A short query is a few dozen small matmuls, and eager PyTorch spends its time around them, not
in them: on the bench's 2-core CPU, all-MiniLM-L6-v2 takes 19.6 ms for one query eagerly (23 ms
through `SentenceTransformer.encode`) and 12.3 ms traced and frozen (`torch.jit.freeze` folds the
graph and pre-packs the weights for oneDNN). That is a quarter of the 50 ms a hybrid search may
take. Tracing costs about 0.9 s and the first two calls another second (the profiling executor
optimizes on them), so `Embedder.encode_query` builds it for a process's second query: a
one-shot `mail-pipeline search` never pays for it, a notebook or a service pays once. It runs
on half the cores (`query_threads`), leaving the rest to the words search that runs beside it.

Only the plain shape is traced (a `Transformer` module, then `Pooling`, then at most
`Normalize`), on CPU in fp32; anything else stays eager. The vectors equal the eager ones
(cosine 1.0 to float rounding; test_embedder checks lengths up to truncation and non-ASCII).
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_TRACEABLE = ("Transformer", "Pooling", "Normalize")


def query_threads() -> int:
    """Half the cores: a hybrid search runs its words search beside the query embedding, and on
    2 cores torch on both made them fight (side by side over 120 searches: p50 47.5 -> 43.9 ms,
    p95 68.1 -> 55.7 with one thread here and the words search overlapped)."""
    return max(1, (os.cpu_count() or 2) // 2)


def traceable(model: Any, device: str | None, precision: str | None) -> bool:
    names = [type(module).__name__ for module in model]
    return (
        device == "cpu"
        and precision == "fp32"
        and names[:2] == ["Transformer", "Pooling"]
        and all(name in _TRACEABLE for name in names)
    )


class TracedQueryEncoder:
    """`encoder(text)`: the text's pooled float32 vector, not yet normalized (`Embedder.encode_query`
    normalizes it as `Embedder.encode` does)."""

    WARM_UP_CALLS = 2

    def __init__(self, model: Any):
        import torch

        self._model = model
        self._pooling = model[1]
        sample = model.preprocess(["a query to trace the model with"])
        with torch.inference_mode(), warnings.catch_warnings():
            # Shape-dependent Python branches in transformers; tests compare the vectors instead.
            # torch.jit imports TracerWarning without re-exporting it; trace is unannotated
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
            traced = torch.jit.trace(  # type: ignore[no-untyped-call]
                model[0].auto_model,
                (sample["input_ids"], sample["attention_mask"]),
                strict=False,
                check_trace=False,
            )
            self._module = torch.jit.freeze(traced.eval())
        for _ in range(self.WARM_UP_CALLS):
            self("warm up the frozen graph")

    def __call__(self, text: str) -> np.ndarray:
        import torch

        features = self._model.preprocess([text])  # the model's own truncation (max_seq_length)
        threads = torch.get_num_threads()
        torch.set_num_threads(query_threads())
        try:
            with torch.inference_mode():
                out = self._module(features["input_ids"], features["attention_mask"])
                tokens = out["last_hidden_state"] if isinstance(out, dict) else out[0]
                pooled = self._pooling(
                    {"token_embeddings": tokens, "attention_mask": features["attention_mask"]}
                )
        finally:
            torch.set_num_threads(threads)
        vector: np.ndarray = pooled["sentence_embedding"][0].float().numpy()
        return vector


def build(model: Any) -> TracedQueryEncoder | None:
    """The traced encoder, or None (logged) where tracing fails: queries then stay eager."""
    try:
        return TracedQueryEncoder(model)
    except Exception as error:  # a model or torch version tracing does not cover
        log.warning(
            "query encoder stays eager: tracing the model failed (%s: %s)",
            type(error).__name__,
            error,
        )
        return None
