"""A pool of `mail-pipeline worker` processes on the harness's servers, shared by
test_celery_workers.py and the bench's scaleout section: the instance in a PostgreSQL database,
workers each in their own working directory, HOME and data directory (optionally pinned to CPU
cores), and which worker executed which step, from the runs' own events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import yaml

from mail_pipeline.cli.pipeline import instance_config
from mail_pipeline_tests.dagster_process import wait_until


def postgres_instance_yaml(postgres, data_dir: Path) -> str:
    """The pipeline's instance config with its storage in a fresh PostgreSQL database."""
    config = instance_config(4, 5, data_dir)
    config["storage"] = {
        "postgres": {
            "postgres_db": {
                "username": "postgres",
                "password": "unused-with-trust-auth",
                "hostname": "127.0.0.1",
                "db_name": postgres.create_database("mp_celery"),
                "port": postgres.port,
                "scheme": "postgresql+psycopg2",
            }
        }
    }
    return yaml.safe_dump(config)


class Worker:
    """`mail-pipeline worker` in its own process group, working directory, HOME and data
        directory (or `data_dir`, one the pool shares when storage is local); `cpus` pins it, and the
    pool processes it forks, with `taskset -c`."""

    def __init__(
        self,
        name: str,
        root: Path,
        env: dict[str, str],
        instance_yaml: str,
        cpus: str | None = None,
        data_dir: Path | None = None,
    ):
        self.name, self.root, self.cpus = name, root, cpus
        self.cwd, self.home = root / "cwd", root / "home"
        self.data = data_dir or root / "data"
        for path in (self.cwd, self.home, self.data):
            path.mkdir(parents=True, exist_ok=path is data_dir)
        dagster_home = self.home / "dagster"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(instance_yaml)
        self.env = {
            **env,
            "HOME": str(self.home),
            "DAGSTER_HOME": str(dagster_home),
            "MAIL_PIPELINE_DATA_DIR": str(self.data),
        }
        self.log = root / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        command = [str(Path(sys.executable).with_name("mail-pipeline")), "worker"]
        pinned = ["taskset", "-c", self.cpus] if self.cpus else []
        self.process = subprocess.Popen(
            [*pinned, *command, "--name", self.name],
            cwd=self.cwd,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: b"ready." in self.log.read_bytes(), 120, f"worker {self.name}")
        return self

    def model_loads(self) -> int:
        """Model loads in this worker's pool processes (indexing/embedder.py logs each)."""
        return self.log.read_bytes().count(b"embedding backend:")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def stored(self) -> list[str]:
        """Files of the lake or the vectors anywhere on this worker's disk."""
        return [
            str(p)
            for p in self.root.rglob("*")
            if {"lake", "lancedb"} & set(p.relative_to(self.root).parts)
            or p.suffix in (".parquet", ".lance")
        ]


def step_workers(instance, run_ids: list[str] | None = None) -> dict[str, list[str]]:
    """Which Celery workers executed which steps (one entry per execution) of these runs (default
    all), from the events dagster-celery's task reports."""
    from dagster import DagsterEventType, EventRecordsFilter

    records = instance.get_event_records(EventRecordsFilter(DagsterEventType.ENGINE_EVENT))
    by_worker: dict[str, list[str]] = {}
    for record in records:
        if run_ids is not None and record.event_log_entry.run_id not in run_ids:
            continue
        event = record.event_log_entry.dagster_event
        metadata = event.engine_event_data.metadata if event else {}
        if "Celery worker" in metadata:
            hostname = str(metadata["Celery worker"].value).split("@")[0]
            by_worker.setdefault(hostname, []).append(str(event.step_key))
    return by_worker
