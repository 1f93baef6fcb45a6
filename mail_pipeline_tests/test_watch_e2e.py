"""Live mail end to end: the real daemon (`dagster dev`) with the sensor's own poll an hour apart,
the watcher and the running search service: a message APPENDed today is found by `GET /api/search`
through the run the watcher requests at once, one of another day through the sensor's wake-up, and
a flag set on the server reaches `emails` through a wake-up too, not a poll."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import pytest
from dagster import AssetKey, DagsterInstance

from mail_pipeline.cli.pipeline import write_instance_config
from mail_pipeline.settings import get_settings
from mail_pipeline.watch.folder import WatchTiming
from mail_pipeline.watch.watcher import Watcher
from mail_pipeline_tests.dagster_process import DagsterDev, wait_until
from mail_pipeline_tests.indexed_demo import cli, environment, serving
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import register
from mail_pipeline_tests.servers import free_port
from mail_pipeline_tests.test_daemon_e2e import finished_runs, flagged

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
TODAY = date(2026, 11, 20)


@pytest.fixture
def live_stack(dovecot, proxy, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.isoformat())
    # Only the first tick polls by the clock: everything after it comes from wake-ups.
    monkeypatch.setenv("MAIL_PIPELINE_SENSOR_INTERVAL", "3600")
    # The service on the port the runs ask, as under `mail-pipeline run`: it embeds their chunks.
    monkeypatch.setenv("MAIL_PIPELINE_SEARCH_PORT", str(free_port()))
    # The webserver the watcher requests new mail's runs from, as under `mail-pipeline run`.
    ui_port = free_port()
    monkeypatch.setenv("MAIL_PIPELINE_WATCH_RUN_URL", f"http://127.0.0.1:{ui_port}")
    settings = get_settings()
    home = write_instance_config(settings)
    register(dovecot, proxy, data_dir, folders=("INBOX",))
    env = {k: v for k, v in os.environ.items() if k.startswith(("MAIL_PIPELINE", "FERNET", "HF_"))}
    server = DagsterDev(home, env, tmp_path / "dagster.log", ui_port).start()
    stop = threading.Event()
    watcher = Watcher(settings, WatchTiming(step_s=0.5))
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    service_env = environment(
        data_dir,
        MAIL_PIPELINE_TODAY=TODAY.isoformat(),
        MAIL_PIPELINE_SEARCH_PORT=str(settings.search_port),
    )
    with serving(cli("serve"), service_env, tmp_path) as url:
        yield home, url
    stop.set()
    thread.join(timeout=10)
    server.stop()


def found(url: str, words: str) -> list[str]:
    query = urlencode({"q": words, "mode": "text"})
    try:
        with urllib.request.urlopen(f"{url}/api/search?{query}", timeout=10) as answer:
            return [hit["subject"] for hit in json.load(answer)["results"]]
    except urllib.error.HTTPError:  # nothing indexed yet
        return []


def test_appended_mail_is_found_by_the_running_service_and_flags_follow(
    live_stack, dovecot, data_dir
):
    home, url = live_stack
    instance = DagsterInstance.from_config(str(home))
    wait_until(
        lambda: "alice" in instance.get_dynamic_partitions("accounts"), 120, "the first tick"
    )
    # Today's new mail: the watcher requests its run through the webserver at once.
    now = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=8)
    dovecot.append([("INBOX", message("live-0", now, subject="Receipt from Bolt"), now)])
    wait_until(lambda: "Receipt from Bolt" in found(url, "Bolt"), 300, "the service to find it")

    def today_triggers() -> list[str | None]:
        partition = f"alice|{TODAY.isoformat()}"
        return [
            r.dagster_run.tags.get("mail_pipeline/trigger")
            for r in finished_runs(instance, tags={"dagster/partition": partition})
        ]

    wait_until(lambda: "watcher" in today_triggers(), 120, "the watcher's run to finish")

    # Yesterday's (an INTERNALDATE the watcher does not look at): the sensor's poll finds it.
    when = datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), UTC) + timedelta(
        hours=9
    )
    dovecot.append([("INBOX", message("live-1", when, subject="Invoice from Acme"), when)])
    wait_until(lambda: "Invoice from Acme" in found(url, "Acme"), 300, "the service to find it")

    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags(client.search(["ALL"]), [b"\\Flagged"])
    client.logout()
    wait_until(lambda: flagged(data_dir) == {"Invoice from Acme"}, 300, "the flag to reach emails")

    runs = [r.dagster_run for r in finished_runs(instance)]
    triggers = {r.tags.get("mail_pipeline/trigger") for r in runs}
    assert triggers == {"new_mail_sensor", "watcher"}, triggers
    # The new chunks were embedded by the service's warm model, not by a model the run loaded.
    embedded = instance.fetch_materializations(AssetKey("email_embeddings"), limit=100).records
    by = {r.asset_materialization.metadata["embedded_by"].value for r in embedded}
    assert "search service" in by and "this process" not in by, by
