"""Extraction in worker processes: a file that hangs its reader, exhausts memory or crashes the
interpreter costs one worker (killed and replaced) and gives its attachment a defect, never a
stuck or failed run. Each job has `timeout_s` from the moment a ready worker receives it; each
worker runs under an address-space limit of `memory_mb`."""

from __future__ import annotations

import importlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import Connection, wait
from typing import Any

from mail_pipeline.extract.documents import extract
from mail_pipeline.extract.kinds import Extracted, ExtractLimits, Job

# A fresh interpreter (`python -m` this module), not multiprocessing: forking a process that runs
# threads (Dagster, torch, LanceDB) can leave the child holding a lock no thread releases, and
# multiprocessing's spawn re-runs the parent's main script, which breaks unguarded scripts.
STARTUP_TIMEOUT_S = 120.0  # interpreter start and imports, on a loaded machine
READY = "ready"


def _serve(
    conn: Connection, limits: ExtractLimits, target: Callable[[Job, ExtractLimits], Extracted]
) -> None:
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    conn.send(READY)
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent is gone
            return
        if job is None:
            return
        _limit_cpu(limits.timeout_s)
        try:
            result = target(job, limits)
        except MemoryError:  # the limit above at work; the worker lives on
            result = Extracted("", [f"over the memory limit ({limits.memory_mb} MB)"])
        conn.send(result)


def _limit_cpu(timeout_s: float) -> None:
    """The parent kills a job at its deadline; should the parent itself die first, the kernel
    ends a job spinning past it (SIGXCPU) instead of leaving it orphaned."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + timeout_s) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))


def _reference(target: Callable[..., Any]) -> str:
    return f"{target.__module__}:{target.__qualname__}"


class _Worker:
    def __init__(self, limits: ExtractLimits, target: Callable[..., Any]):
        ours, theirs = socket.socketpair()
        # The child imports what this process can: its sys.path, as multiprocessing passes it.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                str(theirs.fileno()),
                json.dumps(asdict(limits)),
                _reference(target),
            ],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        if not self.conn.poll(STARTUP_TIMEOUT_S) or self.conn.recv() != READY:
            self.kill()
            raise RuntimeError(
                f"attachment extraction worker did not start within {STARTUP_TIMEOUT_S:g} s"
            )

    def kill(self) -> str:
        """Kill the worker; how it ended, for the defect."""
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait(10)
        self.conn.close()
        return f"signal {-code}" if code < 0 else f"exit code {code}"

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.process.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class ExtractionPool:
    """Up to `workers` extraction processes, started when first needed and kept between runs."""

    def __init__(
        self,
        limits: ExtractLimits = ExtractLimits(),
        workers: int = 1,
        target: Callable[[Job, ExtractLimits], Extracted] = extract,
    ):
        self.limits, self.workers, self.target = limits, max(1, workers), target
        self._idle: list[_Worker] = []

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().stop()

    def run(self, jobs: list[Job]) -> list[Extracted]:
        """Each job's result, in order."""
        results: list[Extracted | None] = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        busy: dict[Connection, tuple[_Worker, int, float]] = {}
        while pending or busy:
            while pending and len(busy) < self.workers:
                index = pending.popleft()
                worker = self._idle.pop() if self._idle else _Worker(self.limits, self.target)
                try:
                    worker.conn.send(jobs[index])
                except OSError:  # it died while idle: a fresh one takes the job
                    worker.kill()
                    pending.appendleft(index)
                    continue
                busy[worker.conn] = (worker, index, time.monotonic() + self.limits.timeout_s)
            self._collect(busy, results)
        filled = [result for result in results if result is not None]
        if len(filled) != len(jobs):  # every index is filled by an answer, a death or a timeout
            raise RuntimeError(f"{len(jobs) - len(filled)} extraction result(s) missing")
        return filled

    def _collect(
        self, busy: dict[Connection, tuple[_Worker, int, float]], results: list[Extracted | None]
    ) -> None:
        """Wait for the first answer or deadline; record answers, kill what is late or dead."""
        nearest = min(deadline for _, _, deadline in busy.values())
        for ready in wait(list(busy), timeout=max(0.0, nearest - time.monotonic())):
            if not isinstance(ready, Connection):  # wait returns what it was given
                raise TypeError(f"wait returned a {type(ready).__name__}")
            conn = ready
            worker, index, _ = busy.pop(conn)
            try:
                results[index] = conn.recv()
                self._idle.append(worker)
            except (EOFError, OSError):
                results[index] = Extracted("", [f"extraction process died ({worker.kill()})"])
        now = time.monotonic()
        for late, (worker, index, deadline) in list(busy.items()):
            if now >= deadline:
                del busy[late]
                worker.kill()
                results[index] = Extracted("", [f"timed out after {self.limits.timeout_s:g} s"])


def main(argv: list[str]) -> None:
    fd, limits, target = argv
    module, _, name = target.partition(":")
    _serve(
        Connection(int(fd)),
        ExtractLimits(**json.loads(limits)),
        getattr(importlib.import_module(module), name),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
