"""OpenVINO fp32 runtime for a mean-pooling sentence-transformers model: the same vectors as torch fp32.

The model is converted once from the local torch weights (eager attention, traced through
OpenVINO's PyTorch frontend, which sends no telemetry, unlike `convert_model`) and cached as IR.
Encoding needs neither torch nor the model's Python code: the fast tokenizer, the compiled IR,
mean pooling over the attention mask and L2 normalization.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

# Issue #18 measured batch 32 faster than 64 with OpenVINO on CPU.
BATCH_SIZE = 32
PLAIN_MODULES = {"Transformer", "Pooling", "Normalize"}


def available() -> bool:
    """Installed (the `openvino` extra), without importing it."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"] is not None  # None: blocked, as `import` itself treats it
    return importlib.util.find_spec("openvino") is not None


def supports(model_path: str) -> bool:
    """A local Transformer + mean Pooling (+ Normalize) model: what this runtime reproduces."""
    root = Path(model_path)
    try:
        modules = json.loads((root / "modules.json").read_text())
        pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = {m.get("type", "").rsplit(".", 1)[-1] for m in modules}
    other_modes = [
        k
        for k, v in pooling.items()
        if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens" and v
    ]
    return (
        kinds <= PLAIN_MODULES
        and pooling.get("pooling_mode_mean_tokens") is True
        and not other_modes
        and (root / "tokenizer.json").is_file()
    )


def cpu_threads() -> int:
    """The CPUs this process may run on, set explicitly: OpenVINO's own guess can oversubscribe."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def ir_dir(cache_dir: Path, model_path: str) -> Path:
    """Where the converted model lives: keyed on the weights, the config and OpenVINO's version."""
    root = Path(model_path)
    digest = hashlib.sha256(metadata.version("openvino").encode())
    for name in sorted(os.listdir(root)):
        path = root / name
        if path.is_file() and (name.endswith((".json", ".safetensors", ".bin"))):
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return Path(cache_dir) / "openvino" / f"{root.name}-{digest.hexdigest()[:16]}"


def convert(model_path: str, target: Path) -> Path:
    """Trace the torch model once and save it as fp32 IR under `target` (atomically)."""
    import torch
    from openvino import save_model
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder
    from transformers import AutoModel

    # SDPA attention traces into ops the frontend maps less faithfully; eager keeps fp32 exact.
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()
    shape = (2, 16)
    example = {
        "input_ids": torch.ones(shape, dtype=torch.long),
        "attention_mask": torch.ones(shape, dtype=torch.long),
        "token_type_ids": torch.zeros(shape, dtype=torch.long),
    }
    with torch.no_grad():
        decoder = TorchScriptPythonDecoder(model, example_input=example)
        frontend = FrontEndManager().load_by_framework("pytorch")
        converted = frontend.convert(frontend.load(decoder))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        # the default halves the weights
        save_model(converted, staging / "model.xml", compress_to_fp16=False)
        staging.rename(target)
    except OSError:
        if not (target / "model.xml").is_file():  # another process won the race: keep its copy
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class OpenVinoEncoder:
    """Texts -> float32, L2-normalized vectors through the cached IR on the CPU."""

    def __init__(
        self,
        model_path: str,
        cache_dir: Path,
        max_tokens: int,
        *,
        batch_size: int = BATCH_SIZE,
        threads: int | None = None,
    ):
        import openvino
        from tokenizers import Tokenizer

        target = ir_dir(cache_dir, model_path)
        if not (target / "model.xml").is_file():
            convert(model_path, target)
        self.threads = threads or cpu_threads()
        # Without the f32 hint OpenVINO silently runs bf16 on AMX CPUs, and the vectors drift.
        config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        core = openvino.Core()
        self._compiled = core.compile_model(core.read_model(target / "model.xml"), "CPU", config)
        self._inputs = {port.get_any_name() for port in self._compiled.inputs}
        self._request = self._compiled.create_infer_request()
        tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        # tokenizer.json ships truncating and padding at 128
        tokenizer.enable_truncation(max_tokens)
        tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        self._tokenizer = tokenizer
        self.batch_size = batch_size
        self.dimension = int(self._compiled.outputs[0].get_partial_shape()[2].get_length())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        # Longest first, so each batch pads little (as sentence-transformers orders its batches).
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(encodings), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._pooled([encodings[i].ids for i in rows])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalized: np.ndarray = out / np.maximum(norms, 1e-12)
        return normalized

    def _pooled(self, batch: list[list[int]]) -> np.ndarray:
        width = max(map(len, batch))
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, pieces in enumerate(batch):
            ids[row, : len(pieces)], mask[row, : len(pieces)] = pieces, 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = np.asarray(
            self._request.infer({k: v for k, v in feed.items() if k in self._inputs})[0]
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled: np.ndarray = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled
