"""The search service embeds a run's chunks with its warm model (POST /internal/embed): the same
vectors, bit for bit, as the step's own model; the step falls back to its own model wherever the
service cannot answer; bad or foreign requests are refused."""

from __future__ import annotations

import json
import shutil
import socket
import time
import urllib.error
import urllib.request
from datetime import date
from urllib.parse import urlsplit

import numpy as np
import pytest

from mail_pipeline.access.tokens import TokenStore
from mail_pipeline.indexing.embedder import Embedder, shared_embedder
from mail_pipeline.indexing.remote import (
    INDEX_PATH,
    KEY_HEADER,
    MAX_TEXTS,
    PATH,
    ServiceEmbedder,
    arrow_to_text,
    internal_key,
)
from mail_pipeline.settings import Settings
from mail_pipeline.storage.lake import Lake
from mail_pipeline_tests.indexed_demo import cli, environment, serving
from mail_pipeline_tests.servers import free_port

pytestmark = pytest.mark.e2e

# Lengths from a word to past the model's 256 word pieces, more texts than one batch (64).
TEXTS = [
    f"Re: invoice {i} " + " ".join(f"word{j} of the order for acme" for j in range(i * 3 % 97))
    for i in range(70)
]


@pytest.fixture
def config(indexed_demo, tmp_path, monkeypatch) -> tuple:
    """The embedder configuration the service over `indexed_demo` runs with (the defaults)."""
    monkeypatch.chdir(tmp_path)
    for name, value in environment(indexed_demo).items():
        if name.startswith("MAIL_PIPELINE_"):
            monkeypatch.setenv(name, value)
    return Settings().embedder_config


def post(url: str, body: bytes, path: str = PATH, key: str = "") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({KEY_HEADER: key} if key else {})}
    request = urllib.request.Request(url + path, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


class Local:
    """The step's own embedder, counting how often the encoder had to fall back to it."""

    def __init__(self, config: tuple):
        self.config, self.calls = config, 0

    def __call__(self) -> Embedder:
        self.calls += 1
        return shared_embedder(*self.config)


def test_the_service_embeds_bit_for_bit_as_the_step_would(search_service, indexed_demo, config):
    local = Local(config)
    remote = ServiceEmbedder(search_service, str(indexed_demo.resolve()), config, local)
    served = remote.encode(TEXTS)
    assert local.calls == 0, "the service did not answer"
    assert remote.embedded_by == "search service"
    assert remote.vectors_id == shared_embedder(*config).vectors_id
    assert remote.dimension == served.shape[1] == 384
    own = shared_embedder(*config).encode(TEXTS)
    assert served.dtype == own.dtype == np.float32
    assert served.tobytes() == own.tobytes()


def test_without_a_service_the_step_embeds_itself(indexed_demo, config):
    local = Local(config)
    remote = ServiceEmbedder(
        f"http://127.0.0.1:{free_port()}", str(indexed_demo.resolve()), config, local
    )
    vectors = remote.encode(TEXTS[:3])
    assert local.calls >= 1 and remote.embedded_by == "this process"
    assert vectors.tobytes() == shared_embedder(*config).encode(TEXTS[:3]).tobytes()
    assert remote.vectors_id == shared_embedder(*config).vectors_id


def test_a_service_of_another_data_directory_or_model_is_not_used(
    search_service, indexed_demo, tmp_path, config
):
    other = Local(config)
    elsewhere = ServiceEmbedder(search_service, str(tmp_path), config, other)
    elsewhere.encode(TEXTS[:2])
    assert other.calls >= 1
    status, answer = post(
        search_service,
        json.dumps(
            {"data_dir": str(indexed_demo.resolve()), "config": ["x", *config[1:]], "texts": ["a"]}
        ).encode(),
    )
    assert status == 409 and "another data directory or embedder" in answer["error"]


def test_a_backfill_sized_batch_embeds_in_the_step(search_service, indexed_demo, config):
    local = Local(config)
    remote = ServiceEmbedder(search_service, str(indexed_demo.resolve()), config, local)
    many = [f"message number {i}" for i in range(MAX_TEXTS + 1)]
    assert remote.encode(many).shape == (MAX_TEXTS + 1, 384)
    assert local.calls == 1 and remote.embedded_by == "this process"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "expected a JSON object with data_dir, config and texts"),
        (b'{"texts": ["a"]}', 400, "expected a JSON object with data_dir, config and texts"),
        (b'{"data_dir": "", "config": [], "texts": [1]}', 400, "texts must be a list of strings"),
        (
            json.dumps({"data_dir": "", "config": [], "texts": ["a"] * (MAX_TEXTS + 1)}).encode(),
            413,
            f"at most {MAX_TEXTS} texts per request",
        ),
    ],
)
def test_bad_requests_get_a_clear_error(search_service, body, status, error):
    answered, answer = post(search_service, body)
    assert answered == status and error in answer["error"]


def test_only_loopback_clients_may_embed_or_index(indexed_demo, tmp_path):
    """The service listening on every address answers the internal endpoints on loopback only."""
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address other than loopback")
    # Off loopback the service starts only with an access token (docs/access.md); the embed
    # endpoint reads no mail and needs none. A copy, so the shared demo stays token-free.
    data_dir = tmp_path / "data"
    shutil.copytree(indexed_demo, data_dir)
    TokenStore(Settings(data_dir=data_dir).tokens_path).add(
        "reader", [], all_accounts=True, admin=False
    )
    env = environment(data_dir)
    with serving(
        cli("serve", "--host", "0.0.0.0", "--port", str(free_port())), env, tmp_path
    ) as url:
        port = urlsplit(url).port
        body = json.dumps({"data_dir": "", "config": [], "texts": ["a"]}).encode()
        status, answer = post(f"http://{outside}:{port}", body)
        assert status == 403 and "loopback clients only" in answer["error"]
        assert post(f"http://127.0.0.1:{port}", body)[0] == 409  # heard from loopback
        chunks = Lake(data_dir / "lake").read_partition("email_chunks", "demo", date(2026, 11, 20))
        index = {
            "data_dir": "",
            "vectors": "",
            "config": [],
            "account": "demo",
            "day": "2026-11-20",
            "deadline": time.time() + 60,
            "chunks": arrow_to_text(chunks),
        }
        body = json.dumps(index).encode()
        status, answer = post(f"http://{outside}:{port}", body, INDEX_PATH)
        assert status == 403 and f"{INDEX_PATH} answers loopback clients only" in answer["error"]
        assert post(f"http://127.0.0.1:{port}", body, INDEX_PATH, internal_key(data_dir))[0] == 409


def _outside_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address
