"""A run whose worker is killed is marked failed by run monitoring and stops holding its
account's queue: the liveness lock (unit), and node loss under the real daemon (`dagster dev`)."""

from __future__ import annotations

import os
import signal
from datetime import UTC, date, datetime, timedelta

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from mail_pipeline.cli.pipeline import write_instance_config
from mail_pipeline.defs.run_launcher import liveness_path
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.locks import file_lock, holder_pid
from mail_pipeline_tests.conftest import register_user
from mail_pipeline_tests.dagster_process import DagsterDev, wait_until
from mail_pipeline_tests.mailgen import message


def test_a_liveness_lock_tells_a_killed_holder_from_a_live_one(tmp_path):
    import signal
    import subprocess
    import sys

    from mail_pipeline.storage.locks import LivenessLock, holder_pid, probe

    path = tmp_path / "runs" / "r1.lock"
    assert probe(path) is None
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from mail_pipeline.storage.locks import LivenessLock; "
                f"LivenessLock(__import__('pathlib').Path({str(path)!r})).acquire(); print('held', flush=True); time.sleep(600)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert probe(path) is True and probe(path) is True  # probing neither takes nor breaks it
        assert holder_pid(path) == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert probe(path) is False  # died holding it
    assert not path.exists() and probe(path) is None
    lock = LivenessLock(path).acquire()
    lock.release()  # a clean finish leaves nothing that looks like a death
    assert probe(path) is None and list(path.parent.iterdir()) == []


def test_the_launcher_fails_only_runs_whose_worker_died(tmp_path):
    import subprocess
    import sys

    from dagster import DagsterRun

    from mail_pipeline.defs.run_launcher import (
        LivenessRunLauncher,
        WorkerStatus,
        hold_run_liveness,
        release_run_liveness,
    )

    launcher = LivenessRunLauncher(data_dir=str(tmp_path))
    run = DagsterRun(job_name="ingest", run_id="run-1")
    # not started yet: never guess
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    hold_run_liveness(tmp_path, "run-1")
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    release_run_liveness("run-1")
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING  # finished cleanly
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import os; from mail_pipeline.defs.run_launcher import hold_run_liveness; "
                f"hold_run_liveness({str(tmp_path)!r}, 'run-1'); os.kill(os.getpid(), 9)"
            ),
        ]
    )
    worker.wait()
    health = launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and f"pid {worker.pid}" in health.msg


def test_the_launcher_sweeps_lock_files_of_finished_runs_only(tmp_path, instance):
    import subprocess
    import sys

    from dagster import DagsterRun

    from mail_pipeline.defs.run_launcher import LivenessRunLauncher

    launcher = LivenessRunLauncher(data_dir=str(tmp_path))
    launcher.register_instance(instance)
    for run_id, status in (
        ("done", DagsterRunStatus.SUCCESS),
        ("killed", DagsterRunStatus.STARTED),
    ):
        instance.add_run(DagsterRun(job_name="ingest", run_id=run_id, status=status))
        # Each worker exits holding its lock (as a run worker does, finished or killed).
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from mail_pipeline.defs.run_launcher import hold_run_liveness; "
                f"hold_run_liveness({str(tmp_path)!r}, {run_id!r})",
            ],
            check=True,
        )
    assert launcher.sweep_finished() == 1
    assert not liveness_path(tmp_path, "done").exists()
    assert liveness_path(tmp_path, "killed").exists()  # left for the health check to report


UTC = UTC
TODAY = date(2026, 11, 20)
IN_FLIGHT = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def runs(instance: DagsterInstance, *statuses: DagsterRunStatus):
    return [
        r.dagster_run for r in instance.get_run_records(RunsFilter(statuses=list(statuses) or None))
    ]


def partition(run) -> str:
    return run.tags.get("dagster/partition", "")


def park_two_runs(instance: DagsterInstance, dovecot, data_dir, first_day: date, second_day: date):
    """Mail on two days while the caller holds alice's write lock: the first day's run parks inside
    raw_messages (STARTED, its worker alive), the second waits QUEUED behind the per-account limit."""
    known = {r.run_id for r in runs(instance)}
    dovecot.append([("INBOX", message(f"k{first_day}", at(first_day)), at(first_day))])
    [first] = wait_until(
        lambda: [r for r in runs(instance, DagsterRunStatus.STARTED) if r.run_id not in known],
        240,
        f"the run of {first_day}",
    )
    worker = wait_until(
        lambda: holder_pid(liveness_path(data_dir, first.run_id)),
        120,
        "the run worker's liveness lock",
    )
    dovecot.append([("INBOX", message(f"k{second_day}", at(second_day)), at(second_day))])
    [queued] = wait_until(
        lambda: [r for r in runs(instance, DagsterRunStatus.QUEUED) if r.run_id not in known],
        120,
        f"the run of {second_day}, queued",
    )
    assert partition(queued) == f"alice|{second_day}"
    return first, queued, worker


def assert_the_queue_moves(
    instance: DagsterInstance, killed, queued, *, retried: bool = True
) -> None:
    """The killed run is marked failed, the queued one runs, and the retry policy re-runs the killed one."""
    wait_until(
        lambda: instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE,
        120,
        "the killed run to be marked failed",
    )
    # Each run loads the embedding model: minutes on a loaded 2-core machine.
    wait_until(
        lambda: instance.get_run_by_id(queued.run_id).status == DagsterRunStatus.SUCCESS,
        600,
        "the account's queued run to start and finish",
    )
    if retried:
        retry = wait_until(
            lambda: [
                r
                for r in runs(instance, DagsterRunStatus.SUCCESS)
                if r.tags.get("dagster/parent_run_id") == killed.run_id
            ],
            600,
            "the retry",
        )
        assert [partition(r) for r in retry] == [partition(killed)]


@pytest.mark.integration
@pytest.mark.e2e
def test_a_killed_run_is_failed_and_the_accounts_queue_moves(
    dovecot, data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.isoformat())
    monkeypatch.setenv("MAIL_PIPELINE_SENSOR_INTERVAL", "3")
    monkeypatch.setenv("MAIL_PIPELINE_RUN_MONITORING_INTERVAL", "3")
    settings = get_settings()
    home = write_instance_config(settings)
    register_user(dovecot, settings.accounts_path)
    env = {k: v for k, v in os.environ.items() if k.startswith(("MAIL_PIPELINE", "FERNET", "HF_"))}
    days = [TODAY - timedelta(days=n) for n in (4, 3, 2, 1)]
    instance = DagsterInstance.from_config(str(home))
    server = DagsterDev(home, env, tmp_path / "dagster-1.log").start()
    try:
        with file_lock(data_dir / "locks" / "alice.lock", exclusive=True):
            first, queued, worker = park_two_runs(instance, dovecot, data_dir, days[0], days[1])
            # Node loss: webserver, daemon, code server and run worker die at once, unannounced.
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
            wait_until(lambda: not alive(worker), 30, "the run worker to be gone")
        # nobody was left to say otherwise
        assert instance.get_run_by_id(first.run_id).status == DagsterRunStatus.STARTED
        server = DagsterDev(home, env, tmp_path / "dagster-2.log").start()
        # Not the retry here: a daemon that had run less than a minute may not have recorded where
        # its retry consumer starts, and then skips failures reported before its first look
        # (dagster's EventLogConsumerDaemon); the second kill below checks the retry.
        assert_the_queue_moves(instance, first, queued, retried=False)
        events = instance.all_logs(first.run_id)
        assert any(f"pid {worker}" in (e.message or "") for e in events), (
            "the failure names the dead worker"
        )

        # Only the run worker killed (the OOM killer's usual pick), the rest of Dagster up; once
        # nothing of the first part (its retry, if any) still runs into the lock held below.
        wait_until(lambda: not runs(instance, *IN_FLIGHT), 600, "the first part's runs to finish")
        with file_lock(data_dir / "locks" / "alice.lock", exclusive=True):
            first, queued, worker = park_two_runs(instance, dovecot, data_dir, days[2], days[3])
            os.kill(worker, signal.SIGKILL)
            wait_until(lambda: not alive(worker), 30, "the run worker to be gone")
        assert_the_queue_moves(instance, first, queued)
    finally:
        server.stop()
        instance.dispose()
