"""Run monitoring for runs started by the code server: which runs still have a live worker.

Dagster's DefaultRunLauncher cannot tell the daemon's run monitoring whether a run's worker
lives, so a run whose worker was killed together with the code server (OOM, node loss, a
container restart) stays STARTED forever and, with the per-account run limit of 1, holds that
account's queue. Here every run worker holds a liveness lock (storage/locks.py) under the data
directory from the moment its resources are set up; the monitoring daemon probes it each poll
and a lock its holder died with marks the run failed, which frees the queue and lets the
run-retry policy re-run the partitions.

The worker takes the lock when its resources are set up and keeps it until it exits (no teardown:
that would make the lake resource a context manager every sensor context must open). So a
finished run leaves a free lock file behind; the launcher removes those of finished runs.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, DagsterRun, DefaultRunLauncher

# The result type of RunLauncher.check_run_worker_health (a documented extension point) has no
# public name in dagster 1.13; test_private_names checks these two are still there.
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

from mail_pipeline.storage.locks import LivenessLock, holder_pid, probe

log = logging.getLogger(__name__)
_held: dict[str, LivenessLock] = {}


def liveness_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "locks" / "runs"


def liveness_path(data_dir: Path, run_id: str) -> Path:
    return liveness_dir(data_dir) / f"{run_id}.lock"


SWEEP_INTERVAL_S = 600


def hold_run_liveness(data_dir: Path, run_id: str) -> None:
    """Called in the run worker (the code location's executor is in-process: one worker per run).
    A process that runs runs one after another (`materialize` in tests) holds only the latest."""
    if run_id in _held:
        return
    for other in list(_held):
        release_run_liveness(other)
    _held[run_id] = LivenessLock(liveness_path(data_dir, run_id)).acquire()


def release_run_liveness(run_id: str) -> None:
    lock = _held.pop(run_id, None)
    if lock is not None:
        lock.release()


class LivenessRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher (runs start in the code server) whose run workers' health run monitoring can check."""

    # inst_data is Dagster's ConfigurableClassData (no public name): passed through untouched.
    def __init__(self, data_dir: str, inst_data: Any = None):
        super().__init__(inst_data=inst_data)
        self._data_dir = data_dir
        self._swept_at = 0.0
        self._instance_ref: weakref.ref[DagsterInstance] | None = None

    def register_instance(self, instance: DagsterInstance) -> None:
        super().register_instance(instance)
        self._instance_ref = weakref.ref(instance)  # the base class keeps it only privately

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        from dagster import Field, StringSource

        # From the instance config `mail-pipeline run` writes (or `{env: MAIL_PIPELINE_DATA_DIR}`):
        # the launcher runs in Dagster's processes and reads no settings of its own.
        return {"data_dir": Field(StringSource, description="The pipeline's data directory")}

    @classmethod
    def from_config_value(
        cls, inst_data: Any, config_value: Mapping[str, Any]
    ) -> LivenessRunLauncher:
        return cls(data_dir=config_value["data_dir"], inst_data=inst_data)

    @property
    def data_dir(self) -> Path:
        return Path(self._data_dir)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if time.monotonic() - self._swept_at > SWEEP_INTERVAL_S:
            self._swept_at = time.monotonic()
            self.sweep_finished()
        path = liveness_path(self.data_dir, run.run_id)
        pid = holder_pid(path)
        try:
            alive = probe(path)
        except (
            OSError
        ) as error:  # e.g. the daemon runs as another user: say so, never fail the run on it
            log.warning("run monitoring cannot check %s: %s", path, error)
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"cannot check {path}: {error}")
        if alive is False:
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                (
                    f"the run worker (pid {pid}) died without finishing the run: killed (SIGKILL, out of memory) "
                    "or its host or code server went down; its partitions are re-run by the run-retry policy"
                ),
            )
        # No lock (yet, or any more): the worker has not set up its resources, or just finished.
        # Unknown is reported as running, so a healthy run is never failed on a guess.
        return CheckRunHealthResult(
            WorkerStatus.RUNNING, None if alive else f"no liveness lock at {path}"
        )

    def sweep_finished(self) -> int:
        """Remove the free lock files of finished (or unknown) runs; a STARTED run's is left to the check."""
        removed = 0
        instance = self._instance_ref() if self._instance_ref else None
        for path in liveness_dir(self.data_dir).glob("*.lock"):
            run = instance.get_run_by_id(path.stem) if instance is not None else None
            if run is not None and not run.is_finished:
                continue
            try:
                removed += probe(path) is False
            except OSError as error:
                log.warning("run monitoring cannot check %s: %s", path, error)
        return removed
