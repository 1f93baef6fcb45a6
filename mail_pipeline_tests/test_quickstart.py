"""The README's first command, `make run`, driven as a newcomer would: no account, no key, no
server installed by hand. It must reach a UI with materialized demo partitions and a working
search, stop cleanly on Ctrl-C, and reuse its data on a second start without duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from mail_pipeline_tests.dagster_process import wait_until
from mail_pipeline_tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[1]
PARTITION_STATS = """{ assetNodeOrError(assetKey: {path: ["email_embeddings"]}) {
  ... on AssetNode { partitionStats { numMaterialized } } } }"""


def graphql(port: int, query: str) -> dict:
    import requests

    try:
        return requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10).json().get("data") or {}
    except (requests.ConnectionError, ValueError):
        return {}


def materialized(port: int) -> int:
    node = graphql(port, PARTITION_STATS).get("assetNodeOrError") or {}
    return (node.get("partitionStats") or {}).get("numMaterialized", 0)


def email_count(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*), count(DISTINCT message_id) FROM emails").fetchone()


def serves(port: int, data_dir: Path) -> bool:
    from mail_pipeline.service import client

    return client.serves(client.service_url(port), data_dir, timeout=2)


def running(pattern: str) -> set[str]:
    return set(subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split())


class MakeRun:
    def __init__(self, env: dict, port: int, log: Path):
        self.env, self.port, self.log = env, port, log

    def __enter__(self):
        self.process = subprocess.Popen(["make", "-C", str(ROOT), "run", f"ARGS=--port={self.port}"], env=self.env,
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        return self.process.wait(timeout=90)

    def __exit__(self, *exc):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def test_make_run_reaches_a_searchable_demo(tmp_path):
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_PIPELINE", "FERNET", "DAGSTER"))}
    env.update(MAIL_PIPELINE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env_file = ROOT / ".env"
    had_env = env_file.read_bytes() if env_file.exists() else None
    port, search_port = free_port(), free_port()
    env["MAIL_PIPELINE_SEARCH_PORT"] = str(search_port)
    log = tmp_path / "make-run.log"
    pymaps_before = running("bin/pymap")
    try:
        with MakeRun(env, port, log) as run:
            wait_until(lambda: materialized(port) >= 10, 420, f"demo partitions in the UI (log: {log})", interval=3)
            wait_until(lambda: serves(search_port, data_dir), 180, f"the search service (log: {log})", interval=2)
            # A model the CLI cannot load: only `make run`'s warm search service can answer.
            search_env = {**env, "FERNET_KEY": "unused-by-search", "MAIL_PIPELINE_EMBEDDING_MODEL": str(tmp_path / "none")}
            out = subprocess.run([str(Path(sys.executable).with_name("mail-pipeline")), "search", "invoice", "--json", "-k", "3"],
                                 env=search_env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
            assert out.returncode == 0, out.stderr
            hits = json.loads(out.stdout)
            assert hits and all(h["account"] == "demo" for h in hits)
            assert run.stop() in (0, 2, 130, -signal.SIGINT)  # make itself dies of the SIGINT it forwards
            assert not graphql(port, "{ version }")  # the webserver is gone
            wait_until(lambda: not serves(search_port, data_dir), 30, "the search service to stop")
            wait_until(lambda: not running(str(data_dir)) and running("bin/pymap") <= pymaps_before, 30,
                       "every process of `make run` to exit")
        first = email_count(data_dir)
        assert first[0] == first[1] and first[0] >= 300
        text = log.read_text(errors="replace")
        assert "created FERNET_KEY" in text or had_env is not None
        with MakeRun(env, port, log) as run:
            wait_until(lambda: graphql(port, "{ version }"), 120, "the UI after a restart")
            wait_until(lambda: email_count(data_dir) == first and materialized(port) >= 10, 300, "a re-sync without duplicates",
                       interval=5)
            run.stop()
        assert email_count(data_dir) == first
    finally:
        if had_env is None:
            env_file.unlink(missing_ok=True)
        else:
            env_file.write_bytes(had_env)
