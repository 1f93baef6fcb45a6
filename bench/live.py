"""Live mail: from APPEND to the running search service returning the message, with the IDLE
watcher and with the sensor's poll alone; and the watcher's footprint over 100 idle folders.

Two sections, so each can be run alone: `live` (the latencies: `dagster dev`, the search service
and the harness's Dovecot) and `live_idle` (10 minutes of 100 folders in IDLE, measured whole).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from bench.run_breakdown import breakdown
from bench.sections import Figure, Goal, Section, register

ARRIVALS = 5
IDLE_FOLDERS_PER_USER, IDLE_USERS = 10, 10
IDLE_WINDOW_S = 600


def _dovecot(root: Path, users: dict[str, str]):
    from mail_pipeline_tests.servers import Dovecot

    return Dovecot(root, users=users).start()


def _register(data_dir: Path, dovecot, users: dict[str, str], folders: tuple[str, ...]) -> None:
    from mail_pipeline.storage import crypto
    from mail_pipeline.storage.accounts import Account, AccountRegistry

    registry = AccountRegistry(data_dir / "accounts.json")
    for user, password in users.items():
        registry.add(
            Account(
                slug=user,
                email=f"{user}@example.test",
                host="127.0.0.1",
                port=dovecot.port,
                username=user,
                password_token="",
                security="plain",
                folders=folders,
            ),
            password,
            crypto.load_cipher(),
        )


def _environment(data_dir: Path, **extra: str) -> dict[str, str]:
    from mail_pipeline.storage import crypto

    if not os.environ.get(crypto.KEY_VARIABLE):
        os.environ[crypto.KEY_VARIABLE] = crypto.generate_key()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAIL_PIPELINE_")},
        "MAIL_PIPELINE_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "LANCEDB_LOG": "error",
        **extra,
    }


def _found(url: str, token: str) -> bool:
    try:
        query = urlencode({"q": token, "mode": "text"})
        with urllib.request.urlopen(f"{url}/api/search?{query}", timeout=10) as answer:
            return any(token in hit["subject"] for hit in json.load(answer)["results"])
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextmanager
def _stack(root: Path, env: dict[str, str], watch: bool) -> Iterator[tuple[str, str]]:
    """`dagster dev`, the search service and (with `watch`) `mail-pipeline watch`; the service
    URL and DAGSTER_HOME."""
    from mail_pipeline.cli.pipeline import write_instance_config
    from mail_pipeline.settings import Settings
    from mail_pipeline_tests.dagster_process import DagsterDev
    from mail_pipeline_tests.indexed_demo import cli, serving
    from mail_pipeline_tests.servers import free_port

    # The runs' email_embeddings step asks the service on this port, and the watcher requests new
    # mail's runs from the webserver, as under `mail-pipeline run`.
    ui_port = free_port()
    env = {
        **env,
        "MAIL_PIPELINE_SEARCH_PORT": str(free_port()),
        "MAIL_PIPELINE_WATCH_RUN_URL": f"http://127.0.0.1:{ui_port}",
    }
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        home = write_instance_config(Settings())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    dagster = DagsterDev(home, env, root / "dagster.log", ui_port).start()
    watcher = (
        subprocess.Popen([sys.executable, "-m", "mail_pipeline.cli", "watch"], env=env, cwd=root)
        if watch
        else None
    )
    try:
        with serving(cli("serve"), env, root) as url:
            yield url, str(home)
    finally:
        if watcher:
            watcher.terminate()
            watcher.wait(timeout=30)
        dagster.stop()


def _arrivals(dovecot, url: str, label: str, appended: list[float]) -> list[float]:
    """Seconds from each measured APPEND to the service finding it; `appended` gets the measured
    APPENDs' epoch times (for `run_breakdown`)."""
    from mail_pipeline_tests.mailgen import message

    seconds = []
    for i in range(ARRIVALS + 1):  # the first warms the stack (partition registration, caches)
        token = f"zq{label}{i}x{int(time.time())}"
        now = datetime.now(UTC)
        started = time.monotonic()
        dovecot.append([("INBOX", message(token, now, subject=f"Arrival {token}"), now)])
        deadline = started + 600
        while not _found(url, token):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{token} not searchable after 600 s")
            time.sleep(0.2)
        if i:
            seconds.append(time.monotonic() - started)
            appended.append(now.timestamp())
        print(f"  live {label}: arrival {i} searchable after {time.monotonic() - started:.1f} s")
    return seconds


def _latency(root: Path, watch: bool) -> tuple[list[float], dict[str, float]]:
    users = {"alice": "alice-secret-pw"}
    dovecot = _dovecot(root / "dovecot", users)
    data_dir = root / "data"
    try:
        extra = (
            {"MAIL_PIPELINE_WATCH": "true", "MAIL_PIPELINE_SENSOR_INTERVAL": "3600"}
            if watch
            else {"MAIL_PIPELINE_WATCH": "false", "MAIL_PIPELINE_SENSOR_INTERVAL": "60"}
        )
        env = _environment(data_dir, **extra)
        os.environ["MAIL_PIPELINE_DATA_DIR"] = str(data_dir)
        _register(data_dir, dovecot, users, ("INBOX",))
        with _stack(root, env, watch) as (url, home):
            appended: list[float] = []
            seconds = _arrivals(dovecot, url, "idle" if watch else "poll", appended)
            return seconds, breakdown(home, appended)
    finally:
        dovecot.stop()


def run_live(bench) -> dict[str, float]:
    idle, parts = _latency(bench.scratch / "live-idle", watch=True)
    poll, _parts = _latency(bench.scratch / "live-poll", watch=False)
    ordered = sorted(idle)
    return {
        "live_arrival_to_run_created_s": parts["arrival_to_run_created_s"],
        "live_run_queue_s": parts["queue_s"],
        "live_run_process_start_s": parts["process_start_s"],
        "live_run_embeddings_step_s": parts["step_email_embeddings_s"],
        "live_run_total_s": parts["total_s"],
        "new_mail_to_searchable_idle_s": statistics.median(idle),
        "new_mail_to_searchable_p95_s": ordered[min(len(ordered) - 1, round(0.95 * len(ordered)))],
        "new_mail_to_searchable_poll_s": statistics.median(poll),
        "new_mail_arrivals": float(len(idle)),
    }


def _proc(pid: int) -> tuple[float, float]:
    """(resident MiB, CPU seconds used) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return rss_kib / 1024, ticks / os.sysconf("SC_CLK_TCK")


def run_live_idle(bench) -> dict[str, float]:
    from mail_pipeline.watch import signals

    root = bench.scratch / "live-footprint"
    users = {f"user{i:02d}": f"pw-{i:02d}-secret" for i in range(IDLE_USERS)}
    folders = ("INBOX", *(f"Folder{j}" for j in range(1, IDLE_FOLDERS_PER_USER)))
    dovecot = _dovecot(root / "dovecot", users)
    data_dir = root / "data"
    try:
        for user in users:
            client = dovecot.client(user)
            for folder in folders[1:]:
                client.create_folder(folder)
            client.logout()
        env = _environment(data_dir, MAIL_PIPELINE_WATCH_CONNECTIONS=str(IDLE_FOLDERS_PER_USER))
        os.environ["MAIL_PIPELINE_DATA_DIR"] = str(data_dir)
        _register(data_dir, dovecot, users, folders)
        watcher = subprocess.Popen(
            [sys.executable, "-m", "mail_pipeline.cli", "watch"], env=env, cwd=root
        )
        try:
            deadline = time.monotonic() + 120
            while sum(s.mode == "watched" for s in signals.read_state(data_dir)[1]) < 100:
                if time.monotonic() > deadline:
                    raise RuntimeError("the watcher did not hold 100 folders in IDLE")
                time.sleep(1)
            _rss, cpu_before = _proc(watcher.pid)
            time.sleep(IDLE_WINDOW_S)
            rss, cpu_after = _proc(watcher.pid)
            watched = sum(s.mode == "watched" for s in signals.read_state(data_dir)[1])
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)
    finally:
        dovecot.stop()
    return {
        "watch_idle_folders": float(watched),
        "watch_idle_rss_mb": rss,
        "watch_idle_cpu_s_10min": cpu_after - cpu_before,
        "watch_idle_cpu_percent": 100 * (cpu_after - cpu_before) / IDLE_WINDOW_S,
    }


register(
    Section(
        name="live",
        title="Live mail: from APPEND to the search service returning it",
        run=run_live,
        figures=(
            Figure("new_mail_to_searchable_idle_s", "with the IDLE watcher, median", "s", 1),
            Figure("new_mail_to_searchable_p95_s", "with the IDLE watcher, p95", "s", 1),
            Figure(
                "new_mail_to_searchable_poll_s",
                "poll only (no watcher, sensor every 60 s), median",
                "s",
                1,
            ),
            Figure("new_mail_arrivals", "arrivals measured per case", "", 0),
            Figure(
                "live_arrival_to_run_created_s",
                "from the APPEND to its run being created (wake-up, sensor tick)",
                "s",
                1,
            ),
            Figure("live_run_queue_s", "a run's wait in the queue (created to starting)", "s", 1),
            Figure(
                "live_run_process_start_s",
                "the run process's start (spawn, imports, code load)",
                "s",
                1,
            ),
            Figure("live_run_embeddings_step_s", "the email_embeddings step", "s", 1),
            Figure("live_run_total_s", "the whole run (created to success)", "s", 1),
        ),
        goals=(Goal("new_mail_to_searchable_idle_s", "<=", 10, "at most 10 s (issue #26)"),),
        method=(
            f"One account on the harness's Dovecot; `dagster dev`, `mail-pipeline serve` and (first "
            f"case) `mail-pipeline watch`. {ARRIVALS} messages APPENDed one after another, each "
            "timed until `GET /api/search?mode=text` of the running service returns it (polled "
            "every 0.2 s), after one unmeasured warm-up arrival. With the watcher the sensor's own "
            "poll is an hour apart, so every run comes from the watcher: today's run requested through "
            "the webserver (MAIL_PIPELINE_WATCH_RUN_URL, as `mail-pipeline run` sets it) and a "
            "wake-up of the sensor; poll only: "
            "MAIL_PIPELINE_WATCH=false, MAIL_PIPELINE_SENSOR_INTERVAL=60. The service and the runs share "
            "MAIL_PIPELINE_SEARCH_PORT, as under `mail-pipeline run`: the runs' email_embeddings step "
            "has the service write its partition to LanceDB (POST /internal/index), and the "
            "every_chunk_embedded check reads it back through the service. "
            "`live_arrival_to_run_created_s` is from each APPEND to the first run created after "
            "it. The `live_run_*` "
            "figures are "
            "medians over the watcher case's runs, from their event logs (`bench/run_breakdown.py`)."
        ),
    )
)

register(
    Section(
        name="live_idle",
        title="Live mail: the watcher holding 100 folders in IDLE for 10 minutes",
        run=run_live_idle,
        figures=(
            Figure("watch_idle_folders", "folders held in IDLE at the end", "", 0),
            Figure("watch_idle_rss_mb", "resident memory of `mail-pipeline watch`", "MiB", 1),
            Figure("watch_idle_cpu_s_10min", "CPU time over the 10 minutes", "s", 2),
            Figure("watch_idle_cpu_percent", "CPU over the 10 minutes", "%", 3),
        ),
        method=(
            f"{IDLE_USERS} accounts x {IDLE_FOLDERS_PER_USER} folders on the harness's Dovecot, "
            "MAIL_PIPELINE_WATCH_CONNECTIONS=10; once all 100 are in IDLE, the process's CPU time "
            "(/proc utime+stime) is read before and after 600 s of no mail, measured whole, and "
            "its VmRSS at the end."
        ),
    )
)
