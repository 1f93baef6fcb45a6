"""The embedding backend: torch or OpenVINO, `auto`'s measured choice, the same vectors and cache key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mail_pipeline.cli.doctor import check_model
from mail_pipeline.indexing import backend as backends
from mail_pipeline.indexing import embedder as embedder_module
from mail_pipeline.indexing.backend import (
    OPENVINO_FP32,
    TORCH_FP32,
    Choice,
    Runtime,
    candidates,
    machine_key,
)
from mail_pipeline.indexing.embedder import Embedder
from mail_pipeline.settings import Settings
from mail_pipeline_tests.test_embedder import TEXTS, run_python

BF16 = Runtime("torch", "bf16")
needs_openvino = pytest.mark.skipif(
    not embedder_module.openvino_encoder.available(), reason="the `openvino` extra is not installed"
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One conversion of the model per test module: it takes seconds."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """Synthetic mailbox search texts (the calibration sample) and the edge cases of test_embedder."""
    return list(dict.fromkeys(backends.calibration_texts() + TEXTS))


@pytest.mark.parametrize(
    ("backend", "torch_precision", "openvino", "expected"),
    [
        ("auto", "fp32", False, [TORCH_FP32]),
        ("auto", "fp32", True, [TORCH_FP32, OPENVINO_FP32]),
        ("auto", "bf16", True, [TORCH_FP32, BF16, OPENVINO_FP32]),
        ("auto", "bf16", False, [TORCH_FP32, BF16]),
        ("torch", "fp32", True, [TORCH_FP32]),
        ("torch", "bf16", True, [BF16]),
        ("openvino", "fp32", True, [OPENVINO_FP32]),
    ],
)
def test_candidates(backend, torch_precision, openvino, expected):
    assert candidates(backend, torch_precision, openvino) == expected


@pytest.mark.parametrize(
    ("rates", "cosines", "expected"),
    [
        (
            {TORCH_FP32: 3.0, OPENVINO_FP32: 4.2},
            {TORCH_FP32: 1.0, OPENVINO_FP32: 1.0},
            OPENVINO_FP32,
        ),
        ({TORCH_FP32: 5.0, OPENVINO_FP32: 4.2}, {TORCH_FP32: 1.0, OPENVINO_FP32: 1.0}, TORCH_FP32),
        # Faster, but its vectors drift: never.
        (
            {TORCH_FP32: 3.0, OPENVINO_FP32: 9.0},
            {TORCH_FP32: 1.0, OPENVINO_FP32: 0.998},
            TORCH_FP32,
        ),
        # bf16 keeps the vectors but under its own cache key: only when clearly faster.
        (
            {TORCH_FP32: 2.4, BF16: 4.34, OPENVINO_FP32: 4.22},
            {TORCH_FP32: 1.0, BF16: 0.9999, OPENVINO_FP32: 1.0},
            OPENVINO_FP32,
        ),
        (
            {TORCH_FP32: 2.4, BF16: 9.0, OPENVINO_FP32: 4.22},
            {TORCH_FP32: 1.0, BF16: 0.9999, OPENVINO_FP32: 1.0},
            BF16,
        ),
        ({TORCH_FP32: 2.4, BF16: 9.0}, {TORCH_FP32: 1.0, BF16: 0.998}, TORCH_FP32),
    ],
)
def test_pick(rates, cosines, expected):
    assert backends.pick(rates, cosines) == expected


@pytest.mark.parametrize(
    ("backend", "precision", "message"),
    [
        ("onnx", "auto", "backend must be one of"),
        ("openvino", "bf16", "fp32 only"),
    ],
)
def test_bad_configurations_are_clear_errors(backend, precision, message):
    with pytest.raises(ValueError, match=message):
        Embedder(backend=backend, precision=precision)


def test_settings_validate_the_backend():
    assert Settings(embedding_backend="openvino").embedding_backend == "openvino"
    with pytest.raises(ValueError, match="embedding_backend"):
        Settings(embedding_backend="onnx")


def test_without_openvino_auto_is_torch_and_openvino_is_a_clear_error(tmp_path):
    # `None` in sys.modules is how Python itself marks a module as unimportable.
    out = run_python(
        "import sys; sys.modules['openvino'] = None\n"
        "from mail_pipeline.indexing.embedder import Embedder\n"
        f"e = Embedder(precision='fp32', backend='auto', cache_dir={str(tmp_path)!r})\n"
        "print(e.encode(['hello']).shape, e.backend, e.precision, e.vectors_id, e.choice.how)\n"
        "try:\n"
        f"    Embedder(backend='openvino', cache_dir={str(tmp_path)!r}).encode(['hello'])\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    first, second = out.splitlines()[-2:]
    assert first == "(1, 384) torch fp32 all-MiniLM-L6-v2 only candidate"
    assert "mail_pipeline[openvino]" in second


@needs_openvino
def test_openvino_keeps_the_vectors_and_the_cache_key(cache_dir, real_texts):
    torch_fp32 = Embedder(backend="torch", precision="fp32")
    openvino = Embedder(backend="openvino", cache_dir=cache_dir)
    reference, vectors = torch_fp32.encode(real_texts), openvino.encode(real_texts)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert backends.min_cosine(vectors, reference) >= backends.MIN_COSINE
    assert (openvino.backend, openvino.precision) == ("openvino", "fp32")
    assert openvino.vectors_id == torch_fp32.vectors_id == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(openvino.encode_query(real_texts[0]), reference[0], atol=1e-4)


@needs_openvino
def test_openvino_gives_the_same_top5_neighbours(cache_dir, real_texts):
    torch_fp32, openvino = (
        Embedder(backend="torch", precision="fp32"),
        Embedder(backend="openvino", cache_dir=cache_dir),
    )

    def neighbours(vectors):
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argsort(-similarity, axis=1, kind="stable")[:, :5]

    expected, got = (
        neighbours(torch_fp32.encode(real_texts)),
        neighbours(openvino.encode(real_texts)),
    )
    assert [list(row) for row in got] == [list(row) for row in expected]


@needs_openvino
def test_openvino_reads_256_word_pieces_not_the_tokenizer_files_128(cache_dir):
    # Two texts that differ only after word piece 128: truncation at 128 would make them equal.
    head = "The quarterly budget review covers travel, hiring and vendor contracts. " * 12
    a, b = head + "Approved by finance.", head + "Rejected by legal, resubmit in May."
    openvino = Embedder(backend="openvino", cache_dir=cache_dir)
    assert 128 < openvino.tokens.count(a) < 256
    vectors = openvino.encode([a, b])
    assert float(vectors[0] @ vectors[1]) < 0.9999


@needs_openvino
def test_auto_measures_once_then_reuses_the_choice(tmp_path, cache_dir, real_texts, monkeypatch):
    monkeypatch.setattr(embedder_module, "calibration_texts", lambda: real_texts[:12])
    # The converted model is shared with the other tests; the choice file starts empty.
    for entry in (cache_dir / "openvino").iterdir():
        (tmp_path / "openvino").mkdir(exist_ok=True)
        (tmp_path / "openvino" / entry.name).symlink_to(entry)
    chosen = Embedder(precision="fp32", backend="auto", cache_dir=tmp_path)
    assert chosen.encode(["hello"]).shape == (1, 384)
    choice = chosen.choice
    assert choice.how == "measured" and {"torch fp32", "openvino fp32"} <= set(choice.chunks_per_s)
    assert choice.min_cosine["openvino fp32"] >= backends.MIN_COSINE
    assert choice.runtime.name == max(choice.chunks_per_s, key=choice.chunks_per_s.get)
    assert chosen.vectors_id == "all-MiniLM-L6-v2"
    stored = json.loads((tmp_path / backends.CHOICES_FILE).read_text())
    assert next(iter(stored.values()))["runtime"]["backend"] == choice.runtime.backend

    monkeypatch.setattr(embedder_module, "calibration_texts", lambda: pytest.fail("measured twice"))
    again = Embedder(precision="fp32", backend="auto", cache_dir=tmp_path)
    assert again.vectors_id == "all-MiniLM-L6-v2" and again.choice == choice


@needs_openvino
def test_a_stored_choice_is_used_as_measured(tmp_path):
    key = machine_key(Embedder().model_path, "default", "fp32", 64)
    stored = Choice(
        TORCH_FP32,
        "cpu",
        "measured",
        {"torch fp32": 9.0, "openvino fp32": 4.0},
        {"torch fp32": 1.0, "openvino fp32": 0.99999},
        "2026-11-30T09:00:00+00:00",
    )
    backends.write_choice(tmp_path, key, stored)
    assert backends.read_choice(tmp_path, key + "-another machine") is None
    embedder = Embedder(precision="fp32", backend="auto", cache_dir=tmp_path)
    assert (
        embedder.vectors_id == "all-MiniLM-L6-v2"
        and embedder.choice == stored
        and embedder.backend == "torch"
    )
    # A choice made where bf16 was allowed is not one for an fp32-only configuration.
    assert (
        backends.read_choice(tmp_path, machine_key(embedder.model_path, "default", "auto", 64))
        is None
    )
    assert "1.00x torch fp32" in stored.describe() and "openvino fp32 4.0" in stored.describe()


def test_bf16_vectors_get_their_own_cache_key():
    bf16, fp32 = (
        Embedder(backend="torch", precision="bf16"),
        Embedder(backend="torch", precision="fp32"),
    )
    assert bf16.vectors_id == "all-MiniLM-L6-v2@bf16" and fp32.vectors_id == "all-MiniLM-L6-v2"


@pytest.mark.parametrize("backend", ["torch", pytest.param("openvino", marks=needs_openvino)])
def test_doctor_shows_the_backend(backend, cache_dir):
    settings = Settings(embedding_backend=backend, model_cache_dir=cache_dir)
    found = {f.check: f for f in check_model(settings)}
    assert found["embedding model"].ok, found["embedding model"].detail
    assert found["embedding backend"].ok and found["embedding backend"].detail.startswith(
        f"{backend} "
    )


@needs_openvino
def test_the_embedding_cache_stays_valid_from_torch_to_openvino(tmp_path, cache_dir):
    from mail_pipeline.storage.vectors import VectorStore
    from mail_pipeline_tests.retrieval_corpus import CORPUS, index_mails, shared_embedder

    mails = CORPUS[:6]
    store = VectorStore(tmp_path / "vectors", dimension=384)
    produced, embedded = index_mails(mails, shared_embedder(), store)  # torch fp32
    assert produced == embedded > 0
    openvino = Embedder(backend="openvino", cache_dir=cache_dir)
    assert index_mails(mails, openvino, store) == (produced, 0)  # every vector reused
