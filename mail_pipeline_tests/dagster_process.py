"""`dagster dev` (webserver + daemon) as a subprocess on free ports, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from mail_pipeline.runtime.processes import stop_process
from mail_pipeline_tests.servers import free_port


class DagsterDev:
    def __init__(self, home: Path, env: dict[str, str], log: Path, port: int | None = None):
        self.home, self.env, self.log = home, env, log
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> DagsterDev:
        dagster = Path(sys.executable).with_name("dagster")
        self.process = subprocess.Popen(
            [
                str(dagster),
                "dev",
                "-m",
                "mail_pipeline.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            env={**os.environ, **self.env, "DAGSTER_HOME": str(self.home)},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: self.graphql("{ version }").get("version"), timeout, "dagster webserver")
        return self

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        try:
            reply = requests.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables or {}},
                timeout=30,
            )
            return reply.json().get("data") or {}
        except (requests.ConnectionError, ValueError):
            return {}

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT, timeout=60, group=True)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
