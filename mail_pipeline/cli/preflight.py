"""Checks a command makes before it starts anything: each failure is one line naming the value at
fault and how to change it, instead of a bind error deep in a log or a raw GraphQL answer."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mail_pipeline.storage.locks import Claim


class PreflightError(Exception):
    """A check failed; the message is meant for the person who typed the command."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the webserver binds: a port left in TIME_WAIT by the previous run counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_port(port: int, variable: str, host: str = "127.0.0.1") -> None:
    if not port_free(port, host):
        raise PreflightError(
            f"port {port} on {host} is already in use (another `make run`, or another program): stop it, "
            f"or choose a free port with {variable}=<port> (or --port <port>)"
        )


def check_days(
    first: date, last: date, first_day: date, last_day: date, retention_days: int
) -> None:
    """The range must lie within the day partitions: the retention window, up to today (UTC)."""
    problems = []
    if last < first:
        problems.append(f"--to {last} is before --from {first}")
    if first < first_day:
        problems.append(
            f"--from {first} is before the first day kept, {first_day} "
            f"(MAIL_PIPELINE_RETENTION_DAYS={retention_days})"
        )
    if last > last_day:
        problems.append(f"--to {last} is in the future: the last day is today, {last_day} (UTC)")
    if problems:
        raise PreflightError("; ".join(problems))


def claim_data_dir(data_dir: Path, ui_url: str) -> Claim:
    """One `mail-pipeline run` per data directory: a second would start another daemon on the same
    instance and lake. Returns the held claim (release it on exit); a claim whose holder died is
    taken over, and said so."""
    from mail_pipeline.storage.locks import Claim, ClaimedElsewhere

    try:
        claim = Claim(Path(data_dir) / "locks" / "run.claim").acquire({"ui": ui_url})
    except ClaimedElsewhere as taken:
        holder = taken.holder
        raise PreflightError(
            f"the data directory {Path(data_dir).resolve()} is already in use by `mail-pipeline run` "
            f"(pid {holder.get('pid', '?')}, UI {holder.get('ui', 'unknown')}): use that one, or stop it "
            "(Ctrl-C in its terminal) before starting another; a second pipeline on other mail needs its own "
            "MAIL_PIPELINE_DATA_DIR"
        ) from None
    if claim.previous:
        print(
            f"took over the data directory from `mail-pipeline run` pid {claim.previous.get('pid', '?')}, "
            "which ended without releasing it"
        )
    return claim
