"""Steps on a pool of Celery workers (MAIL_PIPELINE_EXECUTOR=celery): two `mail-pipeline worker`
processes, each in its own empty working directory and HOME, sharing only the S3 bucket
(SeaweedFS), the Dagster instance (PostgreSQL) and the broker (Redis), run a backfill of
2 accounts x 3 days that the daemon launches (`dagster dev`, `mail-pipeline backfill`).

The accounts reach the workers through the registry in PostgreSQL (MAIL_PIPELINE_DATABASE_URL):
no worker, nor the daemon, has an accounts.json; the key comes from FERNET_KEY.
"""

from __future__ import annotations

import hashlib
import os
import signal
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from bench.sensor import add_account
from mail_pipeline import cli
from mail_pipeline.defs.run_launcher import liveness_dir, liveness_path
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.accounts import open_registry
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.locks import probe
from mail_pipeline.storage.vectors import VectorStore
from mail_pipeline_tests.celery_pool import Worker, postgres_instance_yaml, step_workers
from mail_pipeline_tests.dagster_process import DagsterDev, wait_until
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.servers import free_port
from mail_pipeline_tests.test_daemon_e2e import STAGES, finished_runs, settled
from mail_pipeline_tests.test_storage_s3 import search_with_only_the_variables

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
TODAY = date(2026, 11, 20)
DAYS = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)]
USERS = ("alice", "bob")
WORKERS = ("w1", "w2")


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def register_accounts(dovecot, data_dir: Path, database_url: str) -> None:
    registry = open_registry(data_dir, database_url)
    for user in USERS:
        add_account(registry, dovecot, user, user, folders=("INBOX",))
        registry.set_active(user, False)  # no sensor runs: the mail is the backfill's
        dovecot.append(
            [
                (
                    "INBOX",
                    message(f"{user}-{d}-{n}", at(d, 9 + n), subject=f"{user} report {d} #{n}"),
                    at(d, 9 + n),
                )
                for d in DAYS
                for n in range(2)
            ],
            user=user,
        )


def server_digests(dovecot) -> set[str]:
    digests = set()
    for user in USERS:
        client = dovecot.client(user)
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
        digests |= {hashlib.sha256(f[b"BODY[]"]).hexdigest() for f in fetched.values()}
        client.logout()
    return digests


def run_is_held(instance: DagsterInstance, data_dir: Path) -> list[bool]:
    started = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    return [probe(liveness_path(data_dir, r.dagster_run.run_id)) is True for r in started]


def launch_backfill(server, capsys) -> None:
    args = ["backfill", *[a for u in USERS for a in ("--account", u)]]
    args += ["--from", DAYS[0].isoformat(), "--to", DAYS[-1].isoformat(), "--url", server.url]
    assert cli.main(args) == 0, capsys.readouterr().out


def wait_for_every_partition(instance: DagsterInstance) -> None:
    for stage in STAGES:
        wait_until(
            lambda stage=stage: len(instance.get_materialized_partitions(AssetKey(stage))) == 6,
            600,
            f"6 partitions of {stage}",
        )
    wait_until(lambda: settled(instance), 180, "the backfill's runs to finish")
    runs = finished_runs(instance)
    assert runs and {r.dagster_run.status.value for r in runs} == {"SUCCESS"}


def stored_digests() -> list[str]:
    """The sha256 of every raw message row in the lake on S3, duplicates kept."""
    lake = Lake(get_settings().lake_dir)
    return [
        digest
        for account, day in lake.list_partitions("raw_messages")
        for digest in lake.read_partition("raw_messages", account, day, ["sha256"])[
            "sha256"
        ].to_pylist()
    ]


@pytest.fixture
def pool(
    dovecot, redis, postgres, database_url, seaweedfs, s3_storage, data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.isoformat())
    monkeypatch.setenv("MAIL_PIPELINE_EXECUTOR", "celery")
    monkeypatch.setenv("MAIL_PIPELINE_BROKER_URL", redis.url)
    monkeypatch.setenv("MAIL_PIPELINE_EMBEDDING_BACKEND", "torch")
    # No search service answers anywhere: every process embeds with its own model.
    monkeypatch.setenv("MAIL_PIPELINE_SEARCH_PORT", str(free_port()))
    register_accounts(dovecot, data_dir, database_url)
    instance_yaml = postgres_instance_yaml(postgres, data_dir.resolve())
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml)
    shared = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("MAIL_PIPELINE", "FERNET", "HF_", "TRANSFORMERS_", "AWS_"))
    }
    worker_env = {"PATH": os.environ["PATH"], **shared}
    workers = [Worker(n, tmp_path / n, worker_env, instance_yaml) for n in WORKERS]
    server = DagsterDev(home, shared, tmp_path / "dagster.log")
    try:
        for worker in workers:
            worker.start()
        server.start()
        instance = DagsterInstance.from_config(str(home))
        instance.add_dynamic_partitions("accounts", list(USERS))
        yield server, instance, workers
    finally:
        server.stop()
        for worker in workers:
            worker.stop()


def test_two_workers_run_a_backfill_sharing_only_s3_postgres_and_the_broker(
    pool, dovecot, seaweedfs, s3_storage, data_dir, tmp_path, capsys
):
    server, instance, workers = pool
    launch_backfill(server, capsys)
    # Run monitoring's liveness lock is held by each run's own process (the one waiting on the
    # workers), on the daemon's host, not by the workers' step processes.
    wait_until(lambda: any(run_is_held(instance, data_dir)), 300, "a run holding its liveness lock")
    wait_for_every_partition(instance)
    for worker in workers:
        assert not list(liveness_dir(worker.data).glob("*.lock")), worker.name
    # The accounts came from PostgreSQL: no registry file anywhere.
    assert not [p for w in workers for p in w.root.rglob("accounts.json")]
    assert not (data_dir / "accounts.json").exists()

    # Both workers executed steps, and every stage ran on a worker (the runs' own events say where).
    by_worker = step_workers(instance)
    assert set(by_worker) == set(WORKERS), by_worker
    assert {s for steps in by_worker.values() for s in steps} >= set(STAGES)

    # The lake on S3 holds exactly the server's messages.
    expected = server_digests(dovecot)
    assert set(stored_digests()) == expected and len(expected) == 12
    assert any("/lancedb/" in k for k in seaweedfs.keys(s3_storage.split("/", 3)[3]))
    # Nothing of the lake or the vectors on either worker's disk, or on the daemon's.
    for worker in workers:
        assert worker.stored() == [], worker.name
    assert not [p for p in data_dir.rglob("*") if p.suffix in (".parquet", ".lance")]

    # A third process with only the variables finds the mail.
    hits = search_with_only_the_variables(tmp_path, seaweedfs, s3_storage, "bob report")
    assert any(hit["subject"].startswith("bob report") for hit in hits)


@pytest.fixture
def short_visibility(monkeypatch):
    """A killed worker's step goes back on the queue after 90 s instead of an hour. It must exceed
    the longest step, or a step still running is delivered a second time: at 60 s (the setting's
    floor) an embedding step on the 2 shared cores under load ran past it and the survivor
    executed `email_embeddings` three times, so 90 s stays."""
    monkeypatch.setenv("MAIL_PIPELINE_CELERY_VISIBILITY_TIMEOUT", "90")


def test_a_worker_killed_mid_step_leaves_the_step_to_the_other_and_nothing_changes(
    short_visibility, pool, dovecot, capsys
):
    server, instance, workers = pool
    launch_backfill(server, capsys)
    # The first embedding step to start (the longest step) is where a worker dies: process group,
    # SIGKILL, so neither the worker nor its pool process can hand anything back.
    victim = wait_until(
        lambda: next((w for w in workers if w.model_loads()), None),
        600,
        "an embedding step to start",
        interval=0.2,
    )
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    survivor = next(w for w in workers if w is not victim)
    wait_for_every_partition(instance)

    by_worker = step_workers(instance)
    # Both runs' embedding steps ended on the survivor: its own, and the one the victim died in.
    assert "email_embeddings" in by_worker[victim.name]
    assert by_worker[survivor.name].count("email_embeddings") == 2, by_worker
    # ... with one model load in its one pool process for both (indexing/embedder.py logs it).
    assert survivor.model_loads() == 1

    # Nothing lost, nothing duplicated: the server's messages once each, every chunk embedded once.
    stored = stored_digests()
    assert sorted(stored) == sorted(server_digests(dovecot)) and len(stored) == 12
    settings = get_settings()
    lake = Lake(settings.lake_dir)
    chunks = {
        chunk
        for account, day in lake.list_partitions("email_chunks")
        for chunk in lake.read_partition("email_chunks", account, day, ["chunk_id"])[
            "chunk_id"
        ].to_pylist()
    }
    vectors = VectorStore(settings.lancedb_dir)
    embedded = [c for user in USERS for day in DAYS for c in vectors.chunk_ids(user, day)]
    assert vectors.count() == len(chunks) == len(set(embedded)) and set(embedded) == chunks
