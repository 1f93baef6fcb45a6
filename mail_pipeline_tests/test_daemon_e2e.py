"""The real daemon and webserver (`dagster dev`): the sensor ingests new mail, only the day that
got mail (or a flag change) re-runs, and a CLI backfill over 7 days x 2 accounts materializes
every stage."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from mail_pipeline import cli
from mail_pipeline.cli.pipeline import write_instance_config
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.accounts import AccountRegistry
from mail_pipeline_tests.conftest import register_user
from mail_pipeline_tests.dagster_process import DagsterDev, wait_until
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import register

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
UTC = UTC
TODAY = date(2026, 11, 20)
STAGES = ("raw_messages", "emails", "email_chunks", "email_embeddings")


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def stack(dovecot, proxy, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.isoformat())
    monkeypatch.setenv("MAIL_PIPELINE_SENSOR_INTERVAL", "3")
    settings = get_settings()
    home = write_instance_config(settings)
    client = dovecot.client("bob")
    client.logout()
    # Alice through imap_proxy.py, which counts the message bodies the daemon's runs download.
    register(dovecot, proxy, data_dir, folders=("INBOX",))
    register_user(dovecot, settings.accounts_path, "bob")
    env = {k: v for k, v in os.environ.items() if k.startswith(("MAIL_PIPELINE", "FERNET", "HF_"))}
    server = DagsterDev(home, env, tmp_path / "dagster.log").start()
    yield server, home
    server.stop()


def emails_per_day(data_dir) -> dict[date, int]:
    try:
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            return dict(con.execute("SELECT day, count(*) FROM emails GROUP BY day").fetchall())
    except duckdb.Error:  # not created yet, or being created
        return {}


def flagged(data_dir) -> set[str]:
    try:
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            return {
                row[0] for row in con.execute("SELECT subject FROM emails WHERE flagged").fetchall()
            }
    except duckdb.Error:  # being updated
        return set()


def settled(instance: DagsterInstance) -> bool:
    """No run queued, starting or running: asset checks finish after the materializations."""
    busy = [
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
    ]
    return not instance.get_run_records(RunsFilter(statuses=busy))


def finished_runs(instance: DagsterInstance, **filters):
    return instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE], **filters)
    )


def test_sensor_launches_runs_for_exactly_the_days_with_new_mail(stack, dovecot, proxy, data_dir):
    _server, home = stack
    registry = AccountRegistry(data_dir / "accounts.json")
    registry.set_active("bob", False)
    d1, d2, d3 = TODAY - timedelta(days=3), TODAY - timedelta(days=2), TODAY - timedelta(days=1)
    dovecot.append(
        [
            ("INBOX", message("s1", at(d1, 9), subject="Quarterly numbers"), at(d1, 9)),
            ("INBOX", message("s2", at(d2, 9), subject="Lunch on Friday"), at(d2, 9)),
        ]
    )
    wait_until(
        lambda: emails_per_day(data_dir) == {d1: 1, d2: 1},
        240,
        "the sensor's runs to land both days",
    )
    instance = DagsterInstance.from_config(str(home))
    wait_until(
        lambda: len(instance.get_materialized_partitions(AssetKey("email_embeddings"))) == 2,
        120,
        "embeddings",
    )
    wait_until(lambda: settled(instance), 120, "the runs to finish")
    before = {r.dagster_run.run_id for r in finished_runs(instance)}
    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in finished_runs(instance))

    dovecot.append([("INBOX", message("s3", at(d3, 9), subject="Server outage report"), at(d3, 9))])
    wait_until(lambda: emails_per_day(data_dir).get(d3) == 1, 240, "the new day's partition")
    wait_until(
        lambda: len(instance.get_materialized_partitions(AssetKey("email_embeddings"))) == 3,
        120,
        "embeddings",
    )
    wait_until(lambda: settled(instance), 120, "the runs to finish")
    new_runs = [
        r.dagster_run for r in finished_runs(instance) if r.dagster_run.run_id not in before
    ]
    assert new_runs and all(
        r.tags.get("dagster/partition") == f"alice|{d3.isoformat()}" for r in new_runs
    )
    assert {r.job_name for r in new_runs} == {"ingest"}
    assert all(r.status == DagsterRunStatus.SUCCESS for r in new_runs)
    from mail_pipeline.storage.vectors import VectorStore

    assert VectorStore(data_dir / "lancedb").count() >= 3

    # A flag set on the server: the sensor's tick requests the day of that message alone, and its
    # run makes `emails.flagged` true without downloading a body.
    before, bodies = {r.dagster_run.run_id for r in finished_runs(instance)}, proxy.bodies
    assert bodies >= 3  # the proxy counted the three messages the runs above downloaded
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags(client.search(["SUBJECT", "Quarterly numbers"]), [b"\\Flagged"])
    client.logout()
    wait_until(lambda: flagged(data_dir) == {"Quarterly numbers"}, 240, "the flag to reach emails")
    wait_until(lambda: settled(instance), 120, "the runs to finish")
    new_runs = [
        r.dagster_run for r in finished_runs(instance) if r.dagster_run.run_id not in before
    ]
    assert new_runs and all(
        r.tags.get("dagster/partition") == f"alice|{d1.isoformat()}" for r in new_runs
    )
    assert all(r.status == DagsterRunStatus.SUCCESS for r in new_runs)
    assert proxy.bodies == bodies


def test_cli_backfill_seven_days_two_accounts(stack, dovecot, data_dir, capsys):
    server, home = stack
    registry = AccountRegistry(data_dir / "accounts.json")
    days = [TODAY - timedelta(days=i) for i in range(8, 1, -1)]
    for user in ("alice", "bob"):
        # the sensor registers partitions but leaves the mail to the backfill
        registry.set_active(user, False)
        dovecot.append(
            [
                ("INBOX", message(f"{user}-{d}", at(d, 10), subject=f"Daily report {d}"), at(d, 10))
                for d in days
            ],
            user=user,
        )
    instance = DagsterInstance.from_config(str(home))
    wait_until(
        lambda: set(instance.get_dynamic_partitions("accounts")) == {"alice", "bob"},
        60,
        "dynamic partitions",
    )

    code = cli.main(
        [
            "backfill",
            "--account",
            "alice",
            "--account",
            "bob",
            "--from",
            days[0].isoformat(),
            "--to",
            days[-1].isoformat(),
            "--url",
            server.url,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "14 partitions" in out
    for stage in STAGES:
        wait_until(
            lambda stage=stage: len(instance.get_materialized_partitions(AssetKey(stage))) == 14,
            300,
            f"14 partitions of {stage}",
        )
    wait_until(lambda: settled(instance), 120, "the backfill's runs to finish")
    per_day = emails_per_day(data_dir)
    assert sorted(per_day) == days and set(per_day.values()) == {2}

    runs = [r for r in finished_runs(instance) if r.dagster_run.tags.get("mail_pipeline/backfill")]
    assert runs and all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in runs)
    assert {r.dagster_run.job_name for r in runs} == {"ingest"}  # as the UI's run list names them
    by_account: dict[str, list[tuple[float, float]]] = {}
    for record in runs:
        tags = record.dagster_run.tags
        key = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_start", "")
        by_account.setdefault(key.split("|")[0], []).append((record.start_time, record.end_time))
    assert set(by_account) == {"alice", "bob"}
    for spans in by_account.values():
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    # The policy chosen: one run per account over the whole range (login and model load once).
    assert {a: len(s) for a, s in by_account.items()} == {"alice": 1, "bob": 1}
