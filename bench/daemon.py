"""The real stack for the backfill section: `dagster dev` (webserver, daemon, code server) on a
fresh DAGSTER_HOME, the `mail-pipeline backfill` CLI against it, and what the bench reads back
from the instance: materialized partitions, run timings, the process tree's memory."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from mail_pipeline.cli.backfill import BACKFILL_TAG
from mail_pipeline.runtime.webserver import LAUNCH_RUN
from mail_pipeline.stages import STAGES
from mail_pipeline_tests.dagster_process import DagsterDev, wait_until

_LAUNCHED = re.compile(r"backfill (\S+) launched")
LOCATION = (
    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
)


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    # `dagster dev` and the processes it starts read `.env` from their working directory: keep
    # a developer's .env in the repository out of the measured stack.
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class Stack:
    """`dagster dev` over the data directory the current environment's settings name, on the
    instance `write_instance_config` makes there (SQLite) or on `instance_yaml` (PostgreSQL,
    which workers on other hosts share)."""

    def __init__(self, data_dir: Path, env: dict[str, str], instance_yaml: str | None = None):
        from mail_pipeline.cli.pipeline import write_instance_config
        from mail_pipeline.settings import Settings

        logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per instance opened

        self.data_dir = data_dir
        self.home = write_instance_config(Settings())
        if instance_yaml is not None:
            (self.home / "dagster.yaml").write_text(instance_yaml)
        self.server = DagsterDev(self.home, env, data_dir / "dagster.log")
        self._instance = None

    def start(self) -> float:
        started = time.perf_counter()
        with working_directory(self.data_dir):
            self.server.start(timeout=180)
        return time.perf_counter() - started

    def stop(self) -> None:
        self.server.stop()
        if self._instance is not None:
            self._instance.dispose()

    def log_tail(self, chars: int = 3000) -> str:
        return (
            self.server.log.read_text(errors="replace")[-chars:] if self.server.log.exists() else ""
        )

    @property
    def instance(self):
        if self._instance is None:
            from dagster import DagsterInstance

            self._instance = DagsterInstance.from_config(str(self.home))
        return self._instance

    def backfill(self, accounts: str | list[str], first: date, last: date) -> str:
        """`mail-pipeline backfill` of one or more accounts against this webserver; returns the
        backfill id."""
        from mail_pipeline import cli

        named = [accounts] if isinstance(accounts, str) else accounts
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(
                [
                    "backfill",
                    *[arg for account in named for arg in ("--account", account)],
                    "--from",
                    first.isoformat(),
                    "--to",
                    last.isoformat(),
                    "--url",
                    self.server.url,
                ]
            )
        match = _LAUNCHED.search(out.getvalue())
        if code != 0 or not match:
            raise RuntimeError(f"mail-pipeline backfill failed ({code}): {out.getvalue()[-500:]}")
        return match.group(1)

    def launch_partition_run(self, account: str, day: date) -> str:
        """One run of the `ingest` job for one partition, queued like the sensor's RunRequests:
        with the partition's tags, dimension tags included (the per-account run limit keys on
        `dagster/partition/account`)."""
        from mail_pipeline.defs.partitions import mail_partitions_for, partition_key
        from mail_pipeline.settings import Settings

        repository = self.server.graphql(LOCATION)["repositoriesOrError"]["nodes"][0]
        tags = mail_partitions_for(Settings().window).get_tags_for_partition_key(
            str(partition_key(account, day))
        )
        params = {
            "selector": {
                "repositoryLocationName": repository["location"]["name"],
                "repositoryName": repository["name"],
                "jobName": "ingest",
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        reply = self.server.graphql(LAUNCH_RUN, {"params": params}).get("launchRun") or {}
        if reply.get("__typename") != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun failed: {reply}")
        return reply["run"]["runId"]

    def materialized(self, keys: set[str]) -> dict[str, int]:
        """Per stage, how many of these partition keys are materialized."""
        from dagster import AssetKey

        return {
            stage: len(keys & set(self.instance.get_materialized_partitions(AssetKey(stage))))
            for stage in STAGES
        }

    def wait_materialized(self, keys: set[str], timeout: float, what: str) -> None:
        def done() -> bool:
            self.raise_on_failed_runs()
            return all(n == len(keys) for n in self.materialized(keys).values())

        wait_until(done, timeout, what, interval=0.5)

    def raise_on_failed_runs(self) -> None:
        from dagster import DagsterRunStatus, RunsFilter

        failed = self.instance.get_run_records(
            RunsFilter(statuses=[DagsterRunStatus.FAILURE]), limit=1
        )
        if failed:
            raise RuntimeError(
                f"run {failed[0].dagster_run.run_id} failed; dagster dev log: {self.log_tail()}"
            )

    def runs(self, **tags: str) -> list:
        from dagster import RunsFilter

        return list(self.instance.get_run_records(RunsFilter(tags=tags)))

    def backfill_runs(self, backfill_ids: list[str], timeout: float = 120) -> list[RunTiming]:
        """The finished runs of these backfills, timed from the event log."""

        def finished() -> list | None:
            records = [r for b in backfill_ids for r in self.runs(**{BACKFILL_TAG: b})]
            return records if records and all(r.dagster_run.is_finished for r in records) else None

        return [
            self.timing(record)
            for record in wait_until(finished, timeout, "the backfill runs to finish", 0.5)
        ]

    def finished_runs(self, run_ids: list[str], timeout: float = 120) -> list[RunTiming]:
        from dagster import RunsFilter

        def finished() -> list | None:
            records = list(self.instance.get_run_records(RunsFilter(run_ids=run_ids)))
            return (
                records
                if len(records) == len(run_ids) and all(r.dagster_run.is_finished for r in records)
                else None
            )

        return [
            self.timing(record)
            for record in wait_until(finished, timeout, "the runs to finish", 0.5)
        ]

    def timing(self, record) -> RunTiming:
        from dagster import DagsterEventType

        run = record.dagster_run
        starting = self.instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_STARTING)
        launched = starting[0].timestamp if starting else record.start_time
        return RunTiming(
            run.run_id,
            run.status.value,
            record.create_timestamp.timestamp(),
            launched,
            record.end_time or time.time(),
        )

    def step_seconds(self, run_id: str) -> dict[str, float]:
        """Seconds of each step of a run (an asset's step key is its name), start to success."""
        from dagster import DagsterEventType

        events = self.instance.all_logs(
            run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
        )
        started = {
            e.step_key: e.timestamp
            for e in events
            if e.dagster_event.event_type == DagsterEventType.STEP_START
        }
        return {
            e.step_key: e.timestamp - started[e.step_key]
            for e in events
            if e.dagster_event.event_type == DagsterEventType.STEP_SUCCESS and e.step_key in started
        }


@dataclass(frozen=True)
class RunTiming:
    run_id: str
    status: str
    created: float  # queued (epoch seconds)
    launched: float  # RUN_STARTING: the launcher starts the run process
    ended: float

    @property
    def seconds(self) -> float:
        """Process start, code load, every step, teardown."""
        return self.ended - self.launched


def max_parallel(runs: list[RunTiming]) -> int:
    edges = sorted([(r.launched, 1) for r in runs] + [(r.ended, -1) for r in runs])
    depth = peak = 0
    for _, step in edges:
        depth += step
        peak = max(peak, depth)
    return peak


@dataclass
class MemorySampler:
    """Samples RSS over the process tree under `pid` every `interval` s: the peak of the whole
    tree's sum, the peak of its largest process (the run worker, a multiprocessing child of the
    code server, once it holds the model), what each part held at the tree's peak, and every sample."""

    pid: int
    interval: float = 0.5
    peak_tree: int = 0
    peak_process: int = 0
    at_peak: dict[str, int] = field(default_factory=dict)  # role -> RSS summed over its processes
    # (s since start, role -> RSS)
    timeline: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _loop(self) -> None:
        import psutil

        root, started = psutil.Process(self.pid), time.monotonic()
        while not self._stop.wait(self.interval):
            sample: dict[str, int] = {}
            roles: dict[int, str] = {}
            for process in [root, *root.children(recursive=True)]:  # parents before their children
                try:
                    rss, parent = process.memory_info().rss, roles.get(process.ppid(), "")
                    role = roles[process.pid] = process_role(process.cmdline(), parent)
                except psutil.Error:  # exited between listing and reading
                    continue
                sample[role] = sample.get(role, 0) + rss
                self.peak_process = max(self.peak_process, rss)
            self.timeline.append((time.monotonic() - started, sample))
            if sum(sample.values()) > self.peak_tree:
                self.peak_tree, self.at_peak = sum(sample.values()), sample


def process_role(cmdline: list[str], parent: str) -> str:
    """Which part of `dagster dev` a process is, from its command line and its parent's role: the
    run worker is a multiprocessing child of a code server, the parse pool's workers its children."""
    line = " ".join(cmdline)
    if "multiprocessing" in line:
        return "run worker" if parent == "code server" else "worker pools"
    for marker, role in (
        ("mail_pipeline.extract", "worker pools"),
        ("grpc", "code server"),
        ("dagster_webserver", "webserver"),
        ("dagster._daemon", "daemon"),
        (" dev ", "dagster dev"),
    ):
        if marker in line:
            return role
    return "other"


class FirstFound:
    """Polls `found` every `interval` s in a thread; `seconds` is from the start until it was first true."""

    def __init__(self, found: Callable[[], bool], interval: float = 1.0):
        self.found, self.interval, self.seconds = found, interval, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> FirstFound:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.found():
                self.seconds = time.perf_counter() - self._started
                return
            self._stop.wait(self.interval)


def write_timeline(path, timeline: list[tuple[float, dict[str, int]]]) -> None:
    """The sampled RSS of each part of the process tree, MB, one row per sample."""
    roles = sorted({role for _t, sample in timeline for role in sample})
    rows = [",".join(["s", *roles])] + [
        ",".join([f"{t:.1f}", *(f"{sample.get(r, 0) / 2**20:.0f}" for r in roles)])
        for t, sample in timeline
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
