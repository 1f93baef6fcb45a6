"""Pipeline commands of the CLI: run, demo, search, status, doctor, repair, scrub, backfill."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from mail_pipeline.cli.registry import Register, Subcommands
from mail_pipeline.runtime.webserver import ACCOUNT_DIMENSION_TAG, ACCOUNT_TAG
from mail_pipeline.settings import Settings


def register(groups: Subcommands, command: Register) -> None:
    run = groups.add_parser(
        "run", help="start Dagster (UI + daemon); the embedded demo mailbox when no account exists"
    )
    demo = run.add_mutually_exclusive_group()
    demo.add_argument(
        "--demo",
        dest="demo",
        action="store_true",
        default=None,
        help="always serve the demo mailbox",
    )
    demo.add_argument(
        "--no-demo", dest="demo", action="store_false", help="never serve the demo mailbox"
    )
    run.add_argument("--port", type=int, help="web UI port (default MAIL_PIPELINE_UI_PORT or 3000)")
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show every line of Dagster's output (as MAIL_PIPELINE_LOG_LEVEL=debug does)",
    )
    command("run")(cmd_run)

    groups.add_parser(
        "demo",
        help="serve the demo mailbox as the account `demo` (without starting Dagster), until stopped",
    )
    command("demo")(cmd_demo)

    search = groups.add_parser("search", help="search mail by meaning and words")
    search.add_argument(
        "query", help="words, and operators such as from:anna is:unread after:2026-11-01 -in:Spam"
    )
    search.add_argument("--account")
    search.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD")
    search.add_argument("--until", type=date.fromisoformat, help="YYYY-MM-DD (inclusive)")
    search.add_argument("--mode", choices=["hybrid", "vector", "text"], default="hybrid")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--json", action="store_true")
    search.add_argument(
        "--exclude-deleted",
        action="store_true",
        help="leave out mail that left the server (kept by accounts with --on-server-delete keep)",
    )
    command("search")(cmd_search)

    groups.add_parser(
        "status", help="per registered account and folder: last sync, messages stored, last error"
    )
    command("status")(cmd_status)

    groups.add_parser(
        "doctor",
        help="check key, account logins, data directory, lake files, instance storage and the model",
    )
    command("doctor")(cmd_doctor)

    repair = groups.add_parser(
        "repair",
        help="move damaged lake files aside and list the messages the server no longer has",
    )
    repair.add_argument(
        "--offline",
        action="store_true",
        help="do not ask the IMAP servers which messages they still have",
    )
    command("repair")(cmd_repair)

    groups.add_parser(
        "scrub",
        help="read every lake file back against its checksums (as the daily scrub job does)",
    )
    command("scrub")(cmd_scrub)

    backfill = groups.add_parser(
        "backfill", help="launch a backfill of every stage through the running Dagster daemon"
    )
    backfill.add_argument(
        "--account", action="append", required=True, help="account slug (repeatable)"
    )
    backfill.add_argument(
        "--from", dest="first", type=date.fromisoformat, required=True, help="YYYY-MM-DD"
    )
    backfill.add_argument(
        "--to", dest="last", type=date.fromisoformat, required=True, help="YYYY-MM-DD (inclusive)"
    )
    backfill.add_argument(
        "--url", help="Dagster webserver (default http://127.0.0.1:<MAIL_PIPELINE_UI_PORT>)"
    )
    command("backfill")(cmd_backfill)


def ensure_key(env_file: Path = Path(".env")) -> None:
    """Fill FERNET_KEY in .env when none is configured (an empty `FERNET_KEY=` counts as none)."""
    from mail_pipeline import envfile
    from mail_pipeline.storage import crypto

    current = envfile.effective(crypto.KEY_VARIABLE, env_file)
    if current:
        os.environ[crypto.KEY_VARIABLE] = current
        return
    key = crypto.generate_key()
    envfile.fill(
        env_file,
        crypto.KEY_VARIABLE,
        key,
        "Encrypts stored IMAP passwords. Losing it makes them unreadable.",
    )
    os.environ[crypto.KEY_VARIABLE] = key
    print(
        f"created {crypto.KEY_VARIABLE} in {env_file.resolve()} (mode 0600); back it up: "
        "losing it makes the stored IMAP passwords unreadable"
    )


def instance_config(
    max_concurrent_runs: int = 4, monitoring_interval_s: int = 30, data_dir: Path | None = None
) -> dict[str, Any]:
    """The default instance (the repo's dagster.yaml is this, rendered; a test keeps them equal).
    Built in code so that a non-editable install needs no file from the repository. Without a
    data directory, the run launcher takes MAIL_PIPELINE_DATA_DIR when the instance loads."""
    return {
        "telemetry": {"enabled": False},
        "run_launcher": {
            "module": "mail_pipeline.defs.run_launcher",
            "class": "LivenessRunLauncher",
            "config": {
                "data_dir": str(data_dir) if data_dir else {"env": "MAIL_PIPELINE_DATA_DIR"}
            },
        },
        "run_monitoring": {"enabled": True, "poll_interval_seconds": monitoring_interval_s},
        "concurrency": {
            "runs": {
                "max_concurrent_runs": max_concurrent_runs,
                "tag_concurrency_limits": [
                    {"key": tag, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
                    for tag in (ACCOUNT_DIMENSION_TAG, ACCOUNT_TAG)
                ],
            }
        },
        "run_retries": {"enabled": True, "max_retries": 2},
        "run_coordinator": {
            "module": "mail_pipeline.defs.run_coordinator",
            "class": "AccountRunCoordinator",
            "config": {"dequeue_interval_seconds": 1},
        },
    }


def write_instance_config(settings: Settings) -> Path:
    """DAGSTER_HOME under the data directory: SQLite storage there, run limits, monitoring, retries."""
    import yaml

    from mail_pipeline.storage.permissions import private_dir

    home = private_dir((settings.data_dir / "dagster").resolve())
    config = instance_config(
        settings.max_concurrent_runs,
        settings.run_monitoring_interval_s,
        settings.data_dir.resolve(),
    )
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.cli import preflight

    port = args.port or settings.ui_port
    # Before anything starts or changes: a busy port (which would leave the pipeline running
    # without its UI), then another run on this data directory.
    preflight.check_port(port, "MAIL_PIPELINE_UI_PORT")
    claim = preflight.claim_data_dir(settings.data_dir, f"http://127.0.0.1:{port}")
    try:
        return _run_claimed(args, settings, port)
    finally:
        claim.release()


def _run_claimed(args: argparse.Namespace, settings: Settings, port: int) -> int:
    import threading

    from mail_pipeline import logs
    from mail_pipeline.cli.processes import (
        child_environment,
        relay_output,
        serve_demo,
    )
    from mail_pipeline.demo import server as demo_module
    from mail_pipeline.runtime.processes import stop_process
    from mail_pipeline.service import client

    ensure_key()
    registry = settings.registry()
    real = [a for a in registry.list() if a.slug != demo_module.DEMO_SLUG]
    use_demo = (not real) if args.demo is None else args.demo
    server = serve_demo(registry) if use_demo else None
    if not use_demo and demo_module.DEMO_SLUG in registry.load():
        registry.set_active(demo_module.DEMO_SLUG, False)
    home = write_instance_config(settings)
    verbose = args.verbose or logs.verbose()
    print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops everything)")
    print(f"Search page: {client.service_url(settings.search_port)}  (once the model has loaded)")
    print(
        'then try: .venv/bin/mail-pipeline search "invoice"   or   .venv/bin/mail-pipeline status',
        flush=True,
    )
    # Same process group as this command: Ctrl-C in the terminal reaches dagster, the search
    # service and pymap too, and a killed `make run` takes them with it. Dagster's CLI reads a .env
    # in its working directory over the environment: DAGSTER_HOME has none, so the environment
    # given here rules.
    search = subprocess.Popen(
        [sys.executable, "-m", "mail_pipeline.cli", "serve", "--port", str(settings.search_port)],
        env=child_environment(settings, home, verbose),
        cwd=home,
    )
    # The watcher wakes the sensor and requests new mail's runs from the webserver started here;
    # it starts with the others and stops with them.
    watcher = (
        subprocess.Popen(
            [sys.executable, "-m", "mail_pipeline.cli", "watch"],
            env={
                **child_environment(settings, home, verbose),
                "MAIL_PIPELINE_WATCH_RUN_URL": settings.watch_run_url or f"http://127.0.0.1:{port}",
            },
            cwd=home,
        )
        if settings.watch
        else None
    )
    dagster = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster")),
            "dev",
            "-m",
            "mail_pipeline.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            # The daemon's and webserver's own INFO lines (every sensor tick, every run-monitoring
            # pass) are for --verbose; the runs' event stream is the run workers' and stays.
            "--log-level",
            "info" if verbose else "warning",
        ],
        env=child_environment(settings, home, verbose),
        cwd=home,
        stdout=None if verbose else subprocess.PIPE,
        stderr=None if verbose else subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    if dagster.stdout:
        threading.Thread(
            target=relay_output, args=(dagster.stdout, logs.NoiseFilter()), daemon=True
        ).start()
    try:
        return dagster.wait()
    except KeyboardInterrupt:
        # dagster dev shuts its children down on SIGINT
        stop_process(dagster, signal.SIGINT, timeout=60)
        return 0
    finally:
        stop_process(search)
        if watcher:
            stop_process(watcher)
        if server:
            server.stop()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the demo mailbox until stopped, then pause its account (the sensor stops polling it)."""
    from mail_pipeline.cli.processes import serve_demo
    from mail_pipeline.demo.server import DEMO_SLUG
    from mail_pipeline.storage import crypto

    crypto.load_cipher()  # a missing key fails here, before a server is started
    registry = settings.registry()
    server = serve_demo(registry)

    def stop(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # `docker compose down` and `kill` stop it as Ctrl-C does
    print(
        "the new-mail sensor ingests it within MAIL_PIPELINE_SENSOR_INTERVAL seconds; Ctrl-C stops it",
        flush=True,
    )
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        registry.set_active(DEMO_SLUG, False)


def search_hits(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Through the search service when one serves this data directory (warm: milliseconds),
    else in this process (loading the model: seconds); the same answer (hits, note) either way."""
    from mail_pipeline.service import client
    from mail_pipeline.service.reader import MailReader

    filters = {
        "mode": args.mode,
        "account": args.account,
        "since": args.since,
        "until": args.until,
        "k": args.k,
        "exclude_deleted": args.exclude_deleted,
    }
    base = client.service_url(settings.search_port)
    if client.serves(base, settings.data_dir):
        try:
            return client.search_answer(base, args.query, **filters)
        except client.ServiceFailed as error:
            print(f"warning: {error}; searching without it", file=sys.stderr)
    return MailReader(settings).search_answer(args.query, **filters)


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.service.reader import NothingIndexedError, RequestError
    from mail_pipeline.storage.accounts import check_accounts, known_accounts

    if args.account:
        check_accounts([args.account], known_accounts(settings.registry(), settings.lake_dir))
    try:
        answer = search_hits(args, settings)
    except NothingIndexedError as error:
        print(str(error), file=sys.stderr)
        return 1
    except RequestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    hits, note = answer["results"], answer.get("note")
    if args.json:  # the hits alone, as before the note; the note goes to stderr
        if note:
            print(note, file=sys.stderr)
        print(json.dumps(hits, indent=2))
        return 0
    if not hits:
        print(note or "no matches")
    for n, hit in enumerate(hits, 1):
        when = hit["sent_at"][:16].replace("T", " ") if hit["sent_at"] else hit["day"]
        gone = (
            f"  (deleted on the server {hit['deleted_at'][:10]})" if hit.get("deleted_at") else ""
        )
        found_in = f"\n    in attachment: {hit['attachment']}" if hit.get("attachment") else ""
        print(
            f"{n:>2}. [{hit['account']}] {when}  {hit['sender']}{gone}\n    {hit['subject']}{found_in}\n    {hit['snippet'][:160]!s}"
        )
    return 0


STATUS_SQL = """
SELECT s.account, s.folder, s.last_sync, s.last_status, s.consecutive_failures, s.last_error,
       coalesce(m.stored, 0) AS stored
FROM sync_status s
LEFT JOIN (SELECT account, folder, count(*) AS stored FROM raw_messages GROUP BY ALL) m USING (account, folder)
ORDER BY s.account, s.folder
"""


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    import duckdb

    from mail_pipeline.storage import catalog
    from mail_pipeline.storage.lake import Lake

    registered = set(settings.registry().load())
    try:
        lake = Lake(settings.lake_dir)
        catalog.ensure_catalog(settings.warehouse_path, lake)
        with catalog.connect(settings.warehouse_path, lake) as con:
            # A removed account's mail stays until retention drops it; its sync health is no longer news.
            rows = [row for row in con.execute(STATUS_SQL).fetchall() if row[0] in registered]
    except duckdb.Error as failure:
        return status_unreadable(settings, failure)
    if not rows:
        print("nothing synced yet")
    for account, folder, last_sync, status, failures, error, stored in rows:
        when = last_sync.strftime("%Y-%m-%d %H:%M:%S") if last_sync else "never"
        line = f"{account:<16} {folder:<20} last sync {when}  {status:<8} {stored:>7} stored"
        if failures:
            line += f"  {failures} consecutive failure(s): {error}"
        print(line)
    from mail_pipeline.cli.watch import status_lines

    for line in status_lines(settings):
        print(line)
    return 0


def status_unreadable(settings: Settings, error: Exception) -> int:
    """The views `status` reads failed: name the damaged lake files (DuckDB's error names neither
    the file nor the remedy) and exit 1; an error without one is raised as it is."""
    from mail_pipeline.storage import integrity
    from mail_pipeline.storage.lake import Lake

    found = integrity.scrub(Lake(settings.lake_dir))
    if not found:
        raise error
    print(integrity.render(found, settings.lake_dir))
    return 1


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline.cli import backfill

    return backfill.cmd_backfill(args, settings)


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from mail_pipeline import logs
    from mail_pipeline.cli.doctor import diagnose, render

    findings = diagnose(settings)
    print(logs.redact(render(findings)))
    return 0 if all(f.ok or f.warning for f in findings) else 1


def cmd_repair(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when nothing was lost; 1 when messages are lost, or may be and cannot be named."""
    from mail_pipeline import logs
    from mail_pipeline.cli.repair import render, repair

    report = repair(settings, ask_server=not args.offline)
    print(logs.redact(render(report)))
    return 1 if any(item.lost or item.unaccounted for item in report.items) else 0


def cmd_scrub(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 1 when a lake file is damaged: each is named with the command that repairs it."""
    from mail_pipeline.storage import integrity
    from mail_pipeline.storage.lake import Lake

    found = integrity.scrub(Lake(settings.lake_dir))
    print(integrity.render(found, settings.lake_dir))
    return 1 if found else 0
