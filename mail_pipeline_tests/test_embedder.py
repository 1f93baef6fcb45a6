"""The embedder: offline model, lazy loading, normalized float32 vectors, bf16 close to fp32."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mail_pipeline.indexing import Embedder
from mail_pipeline.indexing.embedder import (
    BATCH_TOKENS,
    choose_precision,
    cpu_has_native_bf16,
    token_batches,
)
from mail_pipeline_tests.retrieval_corpus import shared_embedder

REPO = Path(__file__).resolve().parents[1]
TEXTS = [
    "Invoice INV-2026-0042 from Acme Cloud Services is due on March 15.",
    "Your flight to Lisbon departs at 07:25, seat 23A.",
    "The primary Postgres database was unavailable for 42 minutes.",
    "Priya Raman's interview is on Thursday at 10:00.",
    "Cake in the kitchen at 3pm for Hannah's birthday!",
    "Please rotate your API keys before Wednesday.",
    "Sehr geehrte Kundin, anbei erhalten Sie die Rechnung RE-2026-311.",
    "来週の定例会議は水曜日の午後二時に変更となりました。",
    "我们明天下午三点在北京开会。",
    "Привет, счёт на оплату прилагается.",
    "ok",
    "https://tracker.example.com/click?utm_source=newsletter&id=1234567890",
    "🎉🎉🎉 Congratulations on the launch 🚀",
    "Subject: Re: Q3 budget | From: cfo@ourco.example | Date: 2026-03-04\nApproved, thanks.",
    "The third-quarter marketing budget of 85,000 EUR is approved. " * 12,
    "Tracking number 1Z999AA10123456784 is out for delivery.",
    "The TLS certificate on the load balancer expired and payments failed.",
    "Reminder: dental cleaning with Dr. Okafor on Tuesday at 16:30.",
    "    leading and trailing whitespace    ",
    "a" * 400,
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder()


def run_python(code: str, **env: str) -> str:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    environment.update(env, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_and_tokenizer_do_not_load_torch():
    out = run_python(
        "import sys, mail_pipeline, mail_pipeline.indexing, mail_pipeline.indexing.chunk\n"
        "e = mail_pipeline.indexing.Embedder()\n"
        "assert e.tokens.count('hello world') == 4 and e.dimension == 384 and e.max_tokens == 256\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    assert out == "False False"


def test_encodes_offline_without_the_environment_set():
    # A proxy that refuses every connection: any download attempt would fail loudly.
    out = run_python(
        "import os, mail_pipeline.indexing as m\n"
        "v = m.Embedder(precision='fp32', backend='torch').encode(['offline works'])\n"
        "print(os.environ['HF_HUB_OFFLINE'], v.shape)",
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    assert out.splitlines()[-1] == "1 (1, 384)"


def test_vectors_are_normalized_float32(embedder):
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), embedder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)
    assert embedder.model_id == "all-MiniLM-L6-v2"


def test_token_batches_bound_texts_and_padded_tokens():
    lengths = [256, 12, 256, 40, 130, 7, 256, 128, 90, 300]
    batches = token_batches(lengths, max_texts=3, max_tokens=512)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    # longest first
    assert [lengths[i] for batch in batches for i in batch] == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * lengths[batch[0]] <= 512)
    assert [[lengths[i] for i in batch] for batch in batches] == [
        [300],
        [256, 256],
        [256, 130],
        [128, 90, 40],
        [12, 7],
    ]
    assert token_batches([600, 600, 10], max_texts=8, max_tokens=512) == [
        [0],
        [1],
        [2],
    ]  # over the budget: alone


def test_batching_keeps_each_texts_vector(embedder):
    """Texts of very different lengths in a few batches get the vectors they get alone."""
    texts = [
        *TEXTS,
        *(
            f"Item {i}: the third-quarter marketing budget of 85,000 EUR is approved. " * 30
            for i in range(20)
        ),
    ]
    lengths = [min(embedder.tokens.count(t), embedder.max_tokens) for t in texts]
    assert (
        len(token_batches(lengths, embedder.batch_size)) > 1
        and max(lengths) * len(texts) > BATCH_TOKENS
    )
    together = embedder.encode(texts)
    alone = np.stack([embedder.encode([text])[0] for text in texts])
    assert (together * alone).sum(axis=1).min() >= 0.99999


def test_bf16_vectors_match_fp32(embedder):
    bf16 = Embedder(precision="bf16", batch_size=32).encode(TEXTS)
    fp32 = embedder.encode(TEXTS)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert (bf16 * fp32).sum(axis=1).min() >= 0.99


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse avx2 avx512f", False),
        ("fpu avx512_bf16 avx512f", True),
        ("fpu amx_bf16 amx_tile", True),
        ("", False),
    ],
)
def test_native_bf16_detection(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is expected


def test_precision_choice():
    assert choose_precision("fp32", "cpu") == "fp32"
    assert choose_precision("bf16", "cpu") == "bf16"
    assert choose_precision("auto", "cpu") == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(ValueError, match="precision"):
        Embedder(precision="int4")


def test_query_encoder_gives_the_vectors_of_encode(embedder):
    """A process's first query is embedded eagerly, the second builds the traced encoder (on CPU
    in fp32), and its vectors equal `encode`'s for short, long (truncated), non-ASCII and
    whitespace-only-free inputs."""
    from mail_pipeline.indexing.query_encoder import TracedQueryEncoder

    fresh = Embedder(precision="fp32", backend="torch")
    first = fresh.encode_query(TEXTS[0])
    assert fresh._query_encoder is None
    np.testing.assert_allclose(first, fresh.encode([TEXTS[0]])[0], atol=1e-6)
    fresh.encode_query(TEXTS[1])
    if fresh.device == "cpu":
        assert isinstance(fresh._query_encoder, TracedQueryEncoder)
    long_text = "budget " * 400  # past the 256-token limit: truncated as encode truncates it
    for text in [*TEXTS, long_text]:
        vector = fresh.encode_query(text)
        assert vector.shape == (384,) and vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        assert float(vector @ embedder.encode([text])[0]) >= 0.9999, text
