"""The README's first command, `make run`, driven as a newcomer would: no account, no key, no
server installed by hand. It must reach a UI with materialized demo partitions and a working
search, stop cleanly on Ctrl-C, and reuse its data on a second start without duplicates."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from mail_pipeline.storage import crypto
from mail_pipeline_tests.dagster_process import wait_until
from mail_pipeline_tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[1]
# What `make run` reads from the checkout it runs in; the test's copy shares the checkout's venv.
CHECKOUT_FILES = ("Makefile", "pyproject.toml", "requirements-dev.lock", ".env.example")
PARTITION_STATS = """{ assetNodeOrError(assetKey: {path: ["email_embeddings"]}) {
  ... on AssetNode { partitionStats { numMaterialized } } } }"""


def graphql(port: int, query: str) -> dict:
    import requests

    try:
        return (
            requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10)
            .json()
            .get("data")
            or {}
        )
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
    return set(
        subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    )


def checkout_copy(tmp_path: Path) -> Path:
    """A checkout of the files `make run` uses, with the real one's venv: its .env is the test's
    own, so the developer's .env (their FERNET_KEY) is never replaced, even by a killed test."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in CHECKOUT_FILES:
        shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


class MakeRun:
    def __init__(self, checkout: Path, env: dict, port: int, log: Path, args: str = ""):
        self.checkout, self.env, self.port, self.log, self.args = checkout, env, port, log, args

    def __enter__(self):
        # -o: the venv this test runs in is the one `make` would build; never rebuild it from here.
        self.process = subprocess.Popen(
            [
                "make",
                "-C",
                str(self.checkout),
                "-o",
                ".venv/.installed",
                "run",
                f"ARGS=--port={self.port} {self.args}".strip(),
            ],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MAIL_PIPELINE", "FERNET", "DAGSTER"))
    }
    env.update(MAIL_PIPELINE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    checkout = checkout_copy(tmp_path)
    port, search_port = free_port(), free_port()
    env["MAIL_PIPELINE_SEARCH_PORT"] = str(search_port)
    log = tmp_path / "make-run.log"
    with MakeRun(checkout, env, port, log) as run:
        wait_until(
            lambda: materialized(port) >= 10,
            420,
            f"demo partitions in the UI (log: {log})",
            interval=3,
        )
        wait_until(
            lambda: serves(search_port, data_dir),
            180,
            f"the search service (log: {log})",
            interval=2,
        )
        # A first start's console, up to a searchable demo: what a person reads, not a log dump.
        printed = log.read_text(errors="replace").splitlines()
        assert len(printed) < 100, "\n".join([f"{len(printed)} lines:", *printed])
        second_refused_on_the_same_data_dir(checkout, env, tmp_path, data_dir, port)
        # A model the CLI cannot load: only `make run`'s warm search service can answer.
        search_env = {
            **env,
            "FERNET_KEY": "unused-by-search",
            "MAIL_PIPELINE_EMBEDDING_MODEL": str(tmp_path / "none"),
        }
        out = subprocess.run(
            [
                str(Path(sys.executable).with_name("mail-pipeline")),
                "search",
                "invoice",
                "--json",
                "-k",
                "3",
            ],
            env=search_env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        hits = json.loads(out.stdout)
        assert hits and all(h["account"] == "demo" for h in hits)
        # make itself dies of the SIGINT it forwards
        assert run.stop() in (
            0,
            2,
            130,
            -signal.SIGINT,
        )
        assert not graphql(port, "{ version }")  # the webserver is gone
        wait_until(lambda: not serves(search_port, data_dir), 30, "the search service to stop")
        # This run's pymap by its port: other pymaps on a shared machine come and go meanwhile.
        demo_port = re.search(
            r"served by pymap on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace")
        )[1]
        wait_until(
            lambda: not running(str(data_dir)) and not running(f"bin/pymap .*--port {demo_port} "),
            30,
            "every process of `make run` to exit",
        )
    first = email_count(data_dir)
    assert first[0] == first[1] and first[0] >= 300
    assert "created FERNET_KEY" in log.read_text(errors="replace")
    with MakeRun(checkout, env, port, log) as run:
        wait_until(lambda: graphql(port, "{ version }"), 120, "the UI after a restart")
        wait_until(
            lambda: email_count(data_dir) == first and materialized(port) >= 10,
            300,
            "a re-sync without duplicates",
            interval=5,
        )
        run.stop()
    assert email_count(data_dir) == first


def second_refused_on_the_same_data_dir(
    checkout: Path, env: dict, tmp_path: Path, data_dir: Path, port: int
) -> None:
    """The README's advice for a busy port, followed while the first `make run` is up on the same
    data directory: the second stops before changing anything, naming the first; the first goes on."""
    accounts = (data_dir / "accounts.json").read_bytes()
    env_file = (checkout / ".env").read_bytes()
    other_port = free_port()
    log = tmp_path / "second-make-run.log"
    with MakeRun(
        checkout, {**env, "MAIL_PIPELINE_UI_PORT": str(other_port)}, other_port, log
    ) as second:
        assert second.process.wait(timeout=120) != 0
    said = log.read_text(errors="replace")
    assert re.search(
        rf"already in use by `mail-pipeline run` \(pid \d+, UI http://127\.0\.0\.1:{port}\)", said
    ), said
    assert "pymap" not in said and not graphql(other_port, "{ version }")
    assert (data_dir / "accounts.json").read_bytes() == accounts and (
        checkout / ".env"
    ).read_bytes() == env_file
    assert graphql(port, "{ version }") and serves(int(env["MAIL_PIPELINE_SEARCH_PORT"]), data_dir)


LOCATION_STATUS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def loaded_location(port: int) -> dict | None:
    """The code location's entry once it finished loading (successfully or not)."""
    entries = (graphql(port, LOCATION_STATUS).get("workspaceOrError") or {}).get(
        "locationEntries"
    ) or []
    return next((e for e in entries if e["loadStatus"] == "LOADED"), None)


def newcomer_environment(data_dir: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MAIL_PIPELINE", "FERNET", "DAGSTER"))
    }
    return {**env, "MAIL_PIPELINE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


def start_and_stop(checkout: Path, env: dict, log: Path) -> dict:
    """`make run` without the demo until its code location has loaded; the location's entry."""
    port = free_port()
    with MakeRun(checkout, env, port, log, "--no-demo") as run:
        entry = wait_until(
            lambda: (
                (run.process.poll() is None and loaded_location(port))
                or run.process.poll() is not None
            ),
            240,
            f"the code location (log: {log})",
            interval=2,
        )
        assert run.process.poll() is None, log.read_text(errors="replace")[-3000:]
        run.stop()
    return entry["locationOrLoadError"]


def test_env_copied_from_the_example_then_make_run_twice_keeps_one_working_key(tmp_path):
    env = newcomer_environment(tmp_path / "data")
    log = tmp_path / "make-run.log"
    cli = [str(Path(sys.executable).with_name("mail-pipeline"))]
    checkout = checkout_copy(tmp_path)
    env_file = checkout / ".env"
    shutil.copy(checkout / ".env.example", env_file)  # README: cp .env.example .env
    for _ in range(2):
        assert start_and_stop(checkout, env, log)["__typename"] == "RepositoryLocation"
    keys = [line for line in env_file.read_text().splitlines() if line.startswith("FERNET_KEY")]
    assert len(keys) == 1 and keys[0] != "FERNET_KEY=", keys
    assert log.read_text(errors="replace").count("created FERNET_KEY") == 1
    added = subprocess.run(
        [
            *cli,
            "account",
            "add",
            "work",
            "--email",
            "me@example.test",
            "--host",
            "127.0.0.1",
            "--port",
            "1143",
            "--security",
            "plain",
            "--no-verify",
            "--password-env",
            "IMAP_PW",
        ],
        env={**env, "IMAP_PW": "secret-pw"},
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    checked = subprocess.run(
        [*cli, "key", "check"], env=env, cwd=checkout, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0 and "FERNET_KEY OK (1 key(s)); 1 stored" in checked.stdout, (
        checked.stderr
    )


def test_the_environment_wins_over_env_in_the_dagster_processes_too(tmp_path):
    # Dagster's CLI would load this stale key over the environment's from a .env in its working
    # directory and fail to load the code location; `mail-pipeline run` keeps it out.
    env = {**newcomer_environment(tmp_path / "data"), "FERNET_KEY": crypto.generate_key()}
    stale = "FERNET_KEY=not-a-fernet-key\n"
    checkout = checkout_copy(tmp_path)
    (checkout / ".env").write_text(stale)
    location = start_and_stop(checkout, env, tmp_path / "make-run.log")
    assert location["__typename"] == "RepositoryLocation", location.get("message")
    assert (checkout / ".env").read_text() == stale
