"""What the watcher tells the others, as small files in the data directory: a wake-up per
account (read by the new-mail sensor) and the watch state per folder (read by `status`).

Files, not an API call: the sensor, the watcher and `status` share only the data directory
(one volume in docker compose), and a wake-up written while nobody reads it is not lost.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mail_pipeline.storage.permissions import private_dir


@dataclass
class FolderWatchState:
    account: str
    folder: str
    mode: str  # watched (IDLE) | polled (no IDLE, or past the connection budget) | reconnecting
    since: float | None = None  # when the current IDLE connection was established
    last_event: str = ""  # EXISTS, EXPUNGE, FETCH, ... or "reconnect catch-up"
    last_event_at: float | None = None
    error: str = ""  # the last connection failure, secret-free (imap.errors)


def watch_dir(data_dir: Path) -> Path:
    return data_dir / "watch"


def _write_atomic(path: Path, text: str) -> None:
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def wake(data_dir: Path, account: str, now: float | None = None) -> None:
    """Ask the sensor to poll `account` at its next short tick."""
    _write_atomic(watch_dir(data_dir) / "wake" / account, repr(now or time.time()))


def wake_ups(data_dir: Path) -> dict[str, float]:
    """The latest wake-up time of each account; an unreadable file counts as none."""
    found = {}
    folder = watch_dir(data_dir) / "wake"
    for path in folder.glob("*") if folder.is_dir() else []:
        try:
            found[path.name] = float(path.read_text())
        except (OSError, ValueError):
            continue
    return {slug: at for slug, at in found.items() if not slug.startswith(".")}


def write_state(data_dir: Path, states: list[FolderWatchState], now: float | None = None) -> None:
    """The watcher's heartbeat and every folder's state, replaced whole."""
    document = {"heartbeat": now or time.time(), "folders": [asdict(s) for s in states]}
    _write_atomic(watch_dir(data_dir) / "state.json", json.dumps(document))


def read_state(data_dir: Path) -> tuple[float | None, list[FolderWatchState]]:
    """The last heartbeat and folder states written by a watcher; (None, []) when none ran."""
    try:
        document = json.loads((watch_dir(data_dir) / "state.json").read_text())
    except (OSError, ValueError):
        return None, []
    return document.get("heartbeat"), [FolderWatchState(**f) for f in document.get("folders", [])]
