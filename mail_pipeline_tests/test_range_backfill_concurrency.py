"""A backfill launched from the UI over a range of days, on shared storage (the lake on SeaweedFS,
no file lock), against the real daemon: its run carries the account tag, so the instance's tag
limit keeps it and a CLI run of the same account from ever running at the same time."""

from __future__ import annotations

import itertools
import os
import threading
from datetime import date, timedelta

import pytest
import requests
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    SubmitRunContext,
    instance_for_test,
    job,
    op,
)

from mail_pipeline.cli import backfill
from mail_pipeline.cli.pipeline import instance_config, write_instance_config
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.run_coordinator import range_accounts
from mail_pipeline.runtime.webserver import ACCOUNT_TAG, LOOKUP
from mail_pipeline.settings import get_settings
from mail_pipeline_tests.conftest import register_user
from mail_pipeline_tests.dagster_process import DagsterDev, wait_until
from mail_pipeline_tests.imap_proxy import Response, Rewrite

TODAY = date(2026, 11, 20)
START, END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

# What the UI's "Materialize selected" dialog sends for a range of partitions of an asset.
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on Error { message }
  }
}"""


@pytest.mark.parametrize(
    ("tags", "accounts"),
    [
        ({START: "bob|2026-11-17", END: "bob|2026-11-19"}, ["bob"]),
        ({START: "alice|2026-11-19", END: "bob|2026-11-19"}, ["alice", "bob"]),
        ({START: "bob|2026-11-17", END: "bob|2026-11-19", ACCOUNT_TAG: "bob"}, None),
        ({"dagster/partition/account": "bob", "dagster/partition": "bob|2026-11-19"}, None),
        ({START: "2026-11-17", END: "2026-11-19"}, None),  # another asset's one-dimension range
        ({}, None),
    ],
)
def test_range_accounts_reads_the_accounts_a_range_run_covers(tags, accounts):
    assert range_accounts(tags) == accounts


@op
def nothing() -> None:
    """The run's content does not matter here: only how the queue takes it."""


@job
def anything() -> None:
    nothing()


def test_a_range_run_over_several_accounts_fails_before_queueing_on_shared_storage(monkeypatch):
    """The one coordinator path the daemon test below does not take (a backfill of more accounts
    than days, on S3): it never reaches the queue, and says why."""
    monkeypatch.setenv("MAIL_PIPELINE_STORAGE_URL", "s3://mail/pipeline")
    with instance_for_test(
        overrides={"run_coordinator": instance_config()["run_coordinator"]}
    ) as instance:
        tags = {START: "alice|2026-11-19", END: "bob|2026-11-19"}
        run = instance.create_run_for_job(anything, tags=tags)
        instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))  # type: ignore[arg-type]
        stored = instance.get_run_by_id(run.run_id)
        assert stored is not None and stored.status == DagsterRunStatus.FAILURE
        [failure] = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.RUN_FAILURE
        ).records
        assert failure.event_log_entry.dagster_event is not None
        assert "covers several accounts (alice to bob)" in str(
            failure.event_log_entry.dagster_event.message
        )


@pytest.fixture
def stack(dovecot, proxy, s3_storage, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.isoformat())
    monkeypatch.setenv("MAIL_PIPELINE_SENSOR_INTERVAL", "5")
    settings = get_settings()
    home = write_instance_config(settings)
    # Through the proxy, which can hold a run inside its folder's SELECT (see `held_in_select`).
    register_user(
        dovecot, settings.accounts_path, "bob", port=proxy.port, security="plain", ca_file=None
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("MAIL_PIPELINE", "FERNET", "HF_", "AWS_"))
    }
    server = DagsterDev(home, env, tmp_path / "dagster.log").start()
    yield server, DagsterInstance.from_config(str(home)), proxy
    server.stop()


def held_in_select(released: threading.Event) -> Rewrite:
    """A proxy rewrite that holds every SELECT/EXAMINE's answer until `released` (at most 45 s,
    under the runs' 60 s read timeout): a run cannot finish before the test lets it. The sensor's
    polls use STATUS, so they are not held."""

    def hold(response: Response) -> list[Response]:
        last = response[-1]
        if isinstance(last, bytes) and (b"[READ-WRITE]" in last or b"[READ-ONLY]" in last):
            released.wait(45)
        return [response]

    return hold


def knows_bob(server: DagsterDev) -> bool:
    lookup = server.graphql(LOOKUP)
    dimensions = (lookup.get("assetNodeOrError") or {}).get("partitionKeysByDimension") or []
    return any(d["name"] == "account" and "bob" in d["partitionKeys"] for d in dimensions)


def finished(instance: DagsterInstance, run_ids: list[str]) -> bool:
    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    records = instance.get_run_records(RunsFilter(run_ids=run_ids))
    return len(records) == len(run_ids) and all(r.dagster_run.status in done for r in records)


@pytest.mark.integration
@pytest.mark.e2e
def test_a_ui_range_backfill_and_a_cli_run_of_one_account_never_overlap(stack):
    server, instance, proxy = stack
    wait_until(lambda: knows_bob(server), 120, "the sensor to register account bob")
    # The range run may not finish before the CLI run exists (the backfill daemon picks a backfill
    # up seconds later, by when a small CLI run could be done): both must be there to contend.
    released = threading.Event()
    proxy.rewrites.append(held_in_select(released))
    first, last = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
    answer = server.graphql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "partitionsByAssets": [
                    {
                        "assetKey": {"path": ["raw_messages"]},
                        "partitions": {
                            "range": {
                                "start": str(partition_key("bob", first)),
                                "end": str(partition_key("bob", last)),
                            }
                        },
                    }
                ]
            }
        },
    )["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer

    def backfill_runs() -> list[str]:
        tag = {"dagster/backfill": answer["backfillId"]}
        return [r.run_id for r in instance.get_runs(RunsFilter(tags=tag))]

    ui_runs = wait_until(backfill_runs, 180, "the backfill daemon to launch the range run")
    _cli_id, cli_runs = backfill.launch(server.url, ["bob"], first, last, requests.post)
    released.set()
    wait_until(lambda: finished(instance, ui_runs + cli_runs), 300, "both runs to finish")

    ui = instance.get_run_records(RunsFilter(run_ids=ui_runs))
    statuses = instance.get_run_records(RunsFilter(run_ids=ui_runs + cli_runs))
    assert {r.dagster_run.status for r in statuses} == {DagsterRunStatus.SUCCESS}
    assert [(r.dagster_run.tags[START], r.dagster_run.tags[END]) for r in ui] == [
        (str(partition_key("bob", first)), str(partition_key("bob", last)))
    ]
    # Every run of bob the instance holds (the sensor's too), read back with their times.
    bobs = sorted(
        (
            r
            for r in instance.get_run_records(
                RunsFilter(statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE])
            )
            if r.dagster_run.run_id in ui_runs
            or "bob"
            in (
                r.dagster_run.tags.get(ACCOUNT_TAG),
                r.dagster_run.tags.get("dagster/partition/account"),
            )
        ),
        key=lambda r: r.start_time or 0,
    )
    assert {r.dagster_run.run_id for r in bobs} >= set(ui_runs + cli_runs)
    # They contended: each was created before the other ended (the later one waited its turn).
    pair = instance.get_run_records(RunsFilter(run_ids=ui_runs[:1] + cli_runs))
    assert max(r.create_timestamp.timestamp() for r in pair) < min(r.end_time or 0 for r in pair)
    for before, after in itertools.pairwise(bobs):
        assert before.end_time is not None and after.start_time is not None
        assert before.end_time <= after.start_time, (
            before.dagster_run.run_id,
            after.dagster_run.run_id,
        )
    assert all(r.dagster_run.tags.get(ACCOUNT_TAG) == "bob" for r in ui)
