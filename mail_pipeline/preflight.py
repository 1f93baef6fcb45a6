"""Checks a command makes before it starts anything: each failure is one line naming the value at
fault and how to change it, instead of a bind error deep in a log or a raw GraphQL answer."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path


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
            f"or choose a free port with {variable}=<port> (or --port <port>)")


def known_accounts(accounts_path: Path, lake_dir: Path) -> set[str]:
    """Slugs of the registry, and of accounts whose mail is still stored after `account remove`."""
    from mail_pipeline.storage.accounts import AccountRegistry
    from mail_pipeline.storage.lake import Lake

    stored = {account for account, _ in Lake(lake_dir).list_partitions("emails")}
    return set(AccountRegistry(accounts_path).load()) | stored


def check_accounts(requested: list[str], known: set[str]) -> None:
    unknown = sorted(set(requested) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none yet (add one with `mail-pipeline account add`)"
        raise PreflightError(f"unknown account{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(repr(a) for a in unknown)}; known accounts: {listed}")


def check_days(first: date, last: date, first_day: date, last_day: date, retention_days: int) -> None:
    """The range must lie within the day partitions: the retention window, up to today (UTC)."""
    problems = []
    if last < first:
        problems.append(f"--to {last} is before --from {first}")
    if first < first_day:
        problems.append(f"--from {first} is before the first day kept, {first_day} "
                        f"(MAIL_PIPELINE_RETENTION_DAYS={retention_days})")
    if last > last_day:
        problems.append(f"--to {last} is in the future: the last day is today, {last_day} (UTC)")
    if problems:
        raise PreflightError("; ".join(problems))
