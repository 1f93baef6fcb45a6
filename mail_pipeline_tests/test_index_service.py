"""The search service writes a run's partition to LanceDB (POST /internal/index): a real
email_embeddings run with the service up stores the same rows, vectors bit for bit, as the run
that writes them itself when no service answers, and its process imports neither LanceDB nor the
model; foreign and bad requests are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pytest

from mail_pipeline.indexing.remote import (
    CHUNK_IDS_PATH,
    INDEX_PATH,
    MAX_TEXTS,
    ServiceIndexer,
    arrow_to_text,
    internal_key,
)
from mail_pipeline.settings import Settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.vectors import VectorStore
from mail_pipeline_tests.indexed_demo import environment, search_service
from mail_pipeline_tests.servers import free_port
from mail_pipeline_tests.test_embed_service import post

pytestmark = pytest.mark.e2e
ACCOUNT = "demo"

# One email_embeddings run (with its every_chunk_embedded check) in a fresh process, as Dagster's
# run worker: what it reports, the check's verdict, and which of the slow imports it paid.
RUN = """
import json, sys
from dagster import DagsterInstance, materialize
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline_tests.graph import CHECKS, email_embeddings

account, day = sys.argv[1], sys.argv[2]
with DagsterInstance.ephemeral() as instance:
    instance.add_dynamic_partitions("accounts", [account])
    check = [c for c in CHECKS if "every_chunk_embedded" in str(c.check_keys)]
    result = materialize(
        [email_embeddings, *check],
        partition_key=partition_key(account, __import__("datetime").date.fromisoformat(day)),
        resources=build_resources(get_settings()),
        instance=instance,
    )
    (event,) = result.asset_materializations_for_node("email_embeddings")
    metadata = {name: value.value for name, value in event.metadata.items()}
    checked = [e.passed for e in result.get_asset_check_evaluations()]
imported = [m for m in ("lancedb", "torch", "sentence_transformers", "openvino") if m in sys.modules]
print(json.dumps({"success": result.success, "metadata": metadata, "checked": checked,
                  "imported": imported}))
"""


def copy_without_partition(indexed_demo: Path, root: Path) -> tuple[Path, date]:
    """A copy of the demo whose LanceDB lacks the biggest day's rows (the lake keeps its chunks)."""
    data_dir = root / "data"
    shutil.copytree(indexed_demo, data_dir)
    store = VectorStore(data_dir / "lancedb")
    day = max(
        (d for (a, d) in store.partition_counts() if a == ACCOUNT),
        key=lambda d: store.count(ACCOUNT, d),
    )
    store.replace_partition(ACCOUNT, day, [])
    return data_dir, day


def run_embeddings(data_dir: Path, day: date, port: int) -> dict:
    env = environment(data_dir, MAIL_PIPELINE_SEARCH_PORT=str(port))
    env[crypto.KEY_VARIABLE] = crypto.generate_key()
    done = subprocess.run(
        [sys.executable, "-c", RUN, ACCOUNT, day.isoformat()],
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["success"] and answer["checked"] == [True]
    return answer


def stored(data_dir: Path, day: date) -> list[dict]:
    store = VectorStore(data_dir / "lancedb")
    columns = store.schema.names
    return sorted(store.partition_rows(ACCOUNT, day, columns), key=lambda r: r["chunk_id"])


def test_a_run_with_the_service_up_stores_what_it_would_store_itself(indexed_demo, tmp_path):
    served, day = copy_without_partition(indexed_demo, tmp_path / "served")
    alone, same_day = copy_without_partition(indexed_demo, tmp_path / "alone")
    assert same_day == day
    chunks = Lake(served / "lake").read_partition("email_chunks", ACCOUNT, day).num_rows
    assert 0 < chunks <= MAX_TEXTS

    with search_service(served, tmp_path / "served") as url:
        by_service = run_embeddings(served, day, urlsplit(url).port or 0)
        # Again, for the same rows: the service finds the partition unchanged and embeds nothing.
        again = run_embeddings(served, day, urlsplit(url).port or 0)
    by_itself = run_embeddings(alone, day, free_port())  # nothing listens there

    assert by_service["metadata"]["embedded_by"] == "search service"
    assert by_service["imported"] == [], "the run's process loaded LanceDB or the model"
    assert by_itself["metadata"]["embedded_by"] == "this process"
    assert "lancedb" in by_itself["imported"]
    for name in ("dagster/row_count", "chunks_embedded", "chunks_from_cache", "vectors_id"):
        assert by_service["metadata"][name] == by_itself["metadata"][name], name
    assert by_service["metadata"]["dagster/row_count"] == chunks
    assert again["metadata"]["embedded_by"] == "nothing to embed"
    assert again["metadata"]["dagster/row_count"] == chunks

    rows = stored(served, day)
    assert len(rows) == chunks
    assert rows == stored(alone, day)  # every column, the vectors' floats included


@pytest.fixture
def identity(indexed_demo, tmp_path, monkeypatch) -> dict:
    """What the step of a run over `indexed_demo` sends to identify itself."""
    monkeypatch.chdir(tmp_path)
    for name, value in environment(indexed_demo).items():
        if name.startswith("MAIL_PIPELINE_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    return {
        "data_dir": str(settings.data_dir.resolve()),
        "vectors": str(settings.lancedb_dir),
        "config": list(settings.embedder_config),
    }


def key_of(identity: dict) -> str:
    return internal_key(identity["data_dir"])


def demo_chunks(indexed_demo: Path) -> tuple[date, pa.Table]:
    lake = Lake(indexed_demo / "lake")
    store = VectorStore(indexed_demo / "lancedb")
    day = min(d for (a, d) in store.partition_counts() if a == ACCOUNT)
    return day, lake.read_partition("email_chunks", ACCOUNT, day)


def test_a_service_of_another_data_directory_writes_nothing(
    search_service, indexed_demo, identity, tmp_path
):
    day, chunks = demo_chunks(indexed_demo)
    elsewhere = ServiceIndexer(
        search_service, str(tmp_path), identity["vectors"], identity["config"]
    )
    assert elsewhere.index(ACCOUNT, day, chunks) is None
    for name, value in [("vectors", str(tmp_path / "lancedb")), ("config", ["x"])]:
        request = {
            **identity,
            name: value,
            "account": ACCOUNT,
            "day": day.isoformat(),
            "deadline": time.time() + 60,
            "chunks": arrow_to_text(chunks),
        }
        status, answer = post(
            search_service, json.dumps(request).encode(), INDEX_PATH, key_of(identity)
        )
        assert status == 409 and "another data directory, vector store" in answer["error"]


def test_the_service_writes_the_unchanged_partition_as_the_step_would(
    search_service, indexed_demo, identity
):
    """The demo's partition is already stored: the service embeds nothing and says so."""
    day, chunks = demo_chunks(indexed_demo)
    service = ServiceIndexer(
        search_service, identity["data_dir"], identity["vectors"], identity["config"]
    )
    done = service.index(ACCOUNT, day, chunks)
    assert done is not None
    assert (done.rows, done.embedded, done.embedded_by) == (chunks.num_rows, 0, "nothing to embed")


def test_too_many_rows_are_written_by_the_step(search_service, indexed_demo, identity):
    day, chunks = demo_chunks(indexed_demo)
    many = pa.concat_tables([chunks] * (MAX_TEXTS // chunks.num_rows + 1))
    service = ServiceIndexer(
        search_service, identity["data_dir"], identity["vectors"], identity["config"]
    )
    assert service.index(ACCOUNT, day, many) is None
    request = {
        **identity,
        "account": ACCOUNT,
        "day": day.isoformat(),
        "deadline": time.time() + 60,
        "chunks": arrow_to_text(many),
    }
    status, answer = post(
        search_service, json.dumps(request).encode(), INDEX_PATH, key_of(identity)
    )
    assert status == 413 and f"at most {MAX_TEXTS} chunks per request" in answer["error"]


def test_a_step_that_stopped_waiting_gets_nothing_written(search_service, indexed_demo, identity):
    day, chunks = demo_chunks(indexed_demo)
    before = VectorStore(indexed_demo / "lancedb").partition_rows(ACCOUNT, day, ["chunk_id"])
    fewer = chunks.slice(0, 1)  # would replace the partition with one chunk
    request = {
        **identity,
        "account": ACCOUNT,
        "day": day.isoformat(),
        "deadline": time.time() - 1,
        "chunks": arrow_to_text(fewer),
    }
    status, answer = post(
        search_service, json.dumps(request).encode(), INDEX_PATH, key_of(identity)
    )
    assert status == 503 and "stopped waiting" in answer["error"]
    after = VectorStore(indexed_demo / "lancedb").partition_rows(ACCOUNT, day, ["chunk_id"])
    assert len(after) == len(before) > 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "expected a JSON object with data_dir, vectors, config"),
        (b'{"account": "demo"}', 400, "expected a JSON object with data_dir, vectors, config"),
        (
            json.dumps(
                {
                    "data_dir": "",
                    "vectors": "",
                    "config": [],
                    "account": "demo",
                    "day": "2026-11-20",
                    "deadline": 0,
                    "chunks": "not base64 of arrow",
                }
            ).encode(),
            400,
            "expected a JSON object with data_dir, vectors, config",
        ),
        (
            json.dumps(
                {
                    "data_dir": "",
                    "vectors": "",
                    "config": [],
                    "account": "demo",
                    "day": "2026-11-20",
                    "deadline": 0,
                    "chunks": arrow_to_text(pa.table({"text": ["a"]})),
                }
            ).encode(),
            400,
            "chunks must be rows of the email_chunks table",
        ),
    ],
)
def test_bad_requests_get_a_clear_error(search_service, indexed_demo, body, status, error):
    answered, answer = post(search_service, body, INDEX_PATH, internal_key(indexed_demo))
    assert answered == status and error in answer["error"]


@pytest.mark.parametrize("path", [INDEX_PATH, CHUNK_IDS_PATH])
def test_without_the_data_directorys_key_nothing_is_written_or_read(
    search_service, indexed_demo, identity, path
):
    """Any local user reaches loopback; only who can read the data directory may write rows."""
    day, chunks = demo_chunks(indexed_demo)
    request = {
        **identity,
        "account": ACCOUNT,
        "day": day.isoformat(),
        "deadline": time.time() + 60,
        "chunks": arrow_to_text(chunks.slice(0, 1)),
    }
    for key in ("", "not-the-key"):
        status, answer = post(search_service, json.dumps(request).encode(), path, key)
        assert status == 403 and "needs the data directory's internal key" in answer["error"]
    assert (indexed_demo / "internal-endpoints.key").stat().st_mode & 0o077 == 0
    status, answer = post(
        search_service, json.dumps(request).encode(), CHUNK_IDS_PATH, internal_key(indexed_demo)
    )
    assert status == 200 and set(answer["chunk_ids"]) == set(chunks.column("chunk_id").to_pylist())
