"""Stopping a child process: ask, wait, then kill. One way for every process the product and
its test harness start (Dagster, the search service, the demo server, the harness's servers)."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress
from typing import Any


def stop_process(
    process: subprocess.Popen[Any] | None,
    sig: int = signal.SIGTERM,
    timeout: float = 30,
    *,
    group: bool = False,
) -> None:
    """Send `sig` (to the child's whole process group with `group`: the child must have been
    started with `start_new_session=True`), then kill it if it has not exited within `timeout`
    seconds. A child already gone is left alone."""
    if process is None or process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait()
