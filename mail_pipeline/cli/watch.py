"""`mail-pipeline watch`: the live-mail watcher in the foreground (`run` starts it, docker compose
has it as a service), and the per-folder lines `status` prints about it."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from types import FrameType

from mail_pipeline.cli.registry import Register, Subcommands
from mail_pipeline.settings import Settings

# The watcher rewrites its state every 5 s (watch/watcher.py); older than this, it is not running.
STALE_S = 60.0


def register(groups: Subcommands, command: Register) -> None:
    watch = groups.add_parser(
        "watch",
        help="hold IMAP IDLE on the synced folders and wake the new-mail sensor on every change",
    )
    watch.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if a watcher is running on this data directory (a healthcheck), else 1",
    )
    command("watch")(cmd_watch)


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.watch import signals
    from mail_pipeline.watch.watcher import Watcher

    if args.check:
        heartbeat, _states = signals.read_state(settings.data_dir)
        return 0 if heartbeat is not None and time.time() - heartbeat < STALE_S else 1
    if not settings.watch:
        print("the watcher is off (MAIL_PIPELINE_WATCH=false): the sensor polls every account")
        return 0
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    print(
        "watching the synced folders with IMAP IDLE; changes wake the new-mail sensor", flush=True
    )
    Watcher(settings).run(stop)
    return 0


def status_lines(settings: Settings, now: float | None = None) -> list[str]:
    """Per folder: watched (IDLE) since when, or polled, and the last event the watcher saw."""
    from mail_pipeline.watch import signals

    heartbeat, states = signals.read_state(settings.data_dir)
    now = now or time.time()
    if heartbeat is None:  # no watcher ever ran on this data directory
        return []
    if now - heartbeat >= STALE_S or not states:
        return [
            f"watcher: not running (last seen {_when(heartbeat)}); every folder is polled "
            "every MAIL_PIPELINE_SENSOR_INTERVAL seconds"
        ]
    lines = ["watcher:"]
    for s in states:
        since = f" since {_when(s.since)}" if s.since else ""
        event = f"  last event {s.last_event} at {_when(s.last_event_at)}" if s.last_event else ""
        error = f"  ({s.error})" if s.error and s.mode != "watched" else ""
        lines.append(f"  {s.account:<16} {s.folder:<20} {s.mode}{since}{event}{error}")
    return lines


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) if at else "never"
