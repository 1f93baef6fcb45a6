"""The live-mail watcher (mail_pipeline/watch) against the harness's real Dovecot, reached through
imap_proxy.py: IDLE wakes the sensor on new mail and flags, a dropped connection is re-established
and caught up, a server without IDLE is left to the poll; and the sensor's gate on wake-ups."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dagster import Definitions, SensorResult, build_sensor_context

from mail_pipeline import cli
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.defs.sensors import new_mail_sensor_every
from mail_pipeline.imap.records import FolderStatus
from mail_pipeline.settings import get_settings
from mail_pipeline.watch import signals
from mail_pipeline.watch.folder import WatchTiming, moved
from mail_pipeline.watch.watcher import Watcher, plan_watch
from mail_pipeline_tests.graph import raw_messages
from mail_pipeline_tests.imap_proxy import without_capability
from mail_pipeline_tests.mailgen import message

TODAY = datetime(2026, 11, 20, tzinfo=UTC)
FAST = WatchTiming(reidle_s=60, backoff_s=0.1, max_backoff_s=0.5, step_s=0.2)


@pytest.mark.parametrize(
    ("folders", "budget", "watched", "polled"),
    [
        (["Archive", "INBOX", "Sent"], 2, ["INBOX", "Archive"], ["Sent"]),
        (["Archive", "inbox"], 8, ["inbox", "Archive"], []),
        (["INBOX", "Archive"], 0, [], ["INBOX", "Archive"]),
        (["INBOX"], 1, ["INBOX"], []),
    ],
)
def test_the_budget_watches_inbox_first_and_leaves_the_rest_to_the_poll(
    folders, budget, watched, polled
):
    assert plan_watch(folders, budget) == (watched, polled)


@pytest.mark.parametrize(
    ("before", "now", "condstore", "expected"),
    [
        (None, FolderStatus(1, 5, 4, 9), True, True),
        (FolderStatus(1, 5, 4, 9), FolderStatus(1, 5, 4, 9), True, False),
        (FolderStatus(1, 5, 4, 9), FolderStatus(1, 6, 5, 10), True, True),
        (FolderStatus(1, 5, 4, 9), FolderStatus(1, 5, 4, 11), True, True),  # a flag changed
        (FolderStatus(1, 5, 4, 9), FolderStatus(2, 5, 4, 9), True, True),
        # Without CONDSTORE a flag change leaves no trace: always caught up.
        (FolderStatus(1, 5, 4, None), FolderStatus(1, 5, 4, None), False, True),
    ],
)
def test_a_reconnect_catches_up_whenever_the_folder_may_have_changed(
    before, now, condstore, expected
):
    assert moved(before, now, condstore) is expected


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.fixture
def watcher(proxied_alice, data_dir) -> Iterator[Watcher]:
    """A Watcher over the registry (alice's INBOX and Archive through the proxy), running."""
    watcher = Watcher(get_settings(), FAST)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    yield watcher
    stop.set()
    thread.join(timeout=10)


def state(watcher: Watcher, folder: str) -> signals.FolderWatchState:
    return next(s for s in watcher.states if s.folder == folder)


def watching(watcher: Watcher) -> bool:
    return len(watcher.states) == 2 and all(s.mode == "watched" for s in watcher.states)


def append(dovecot, folder: str = "INBOX", subject: str = "live") -> None:
    dovecot.append([(folder, message(subject, datetime.now(UTC)), datetime.now(UTC))])


def woken(data_dir, after: float) -> bool:
    return signals.wake_ups(data_dir).get("alice", 0.0) > after


def test_new_mail_wakes_the_sensor_within_the_idle(watcher, dovecot, data_dir):
    wait_for(lambda: watching(watcher))
    started = time.time()
    append(dovecot, "Archive")
    wait_for(lambda: woken(data_dir, started))
    assert "EXISTS" in state(watcher, "Archive").last_event
    assert state(watcher, "INBOX").last_event == "catch-up"  # only the first look

    def written() -> set[tuple[str, str]]:  # the state file, rewritten every few seconds
        return {(s.folder, s.mode) for s in signals.read_state(data_dir)[1]}

    wait_for(lambda: written() == {("INBOX", "watched"), ("Archive", "watched")})


def test_status_shows_each_folder_watched_since_when_and_its_last_event(
    watcher, dovecot, data_dir, capsys
):
    wait_for(lambda: len(signals.read_state(data_dir)[1]) == 2)
    append(dovecot, "Archive")
    wait_for(
        lambda: all(
            s.mode == "watched" and "EXISTS" in s.last_event
            for s in signals.read_state(data_dir)[1]
            if s.folder == "Archive"
        )
    )
    assert cli.main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    archive = next(line for line in lines if " Archive " in line)
    assert archive.split()[:4] == ["alice", "Archive", "watched", "since"]
    assert "last event EXISTS" in archive
    assert any(line.split()[:3] == ["alice", "INBOX", "watched"] for line in lines)


def test_a_flag_set_on_the_server_wakes_the_sensor(watcher, dovecot, data_dir):
    append(dovecot)
    wait_for(lambda: watching(watcher) and state(watcher, "INBOX").last_event)
    started = time.time()
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags(client.search(["ALL"]), [b"\\Flagged"])
    client.logout()
    wait_for(lambda: woken(data_dir, started) and state(watcher, "INBOX").last_event == "FETCH")


def test_a_dropped_connection_is_reestablished_and_caught_up(watcher, dovecot, proxy, data_dir):
    wait_for(lambda: watching(watcher))
    inbox = next(w for w in watcher.watches if w.state.folder == "INBOX")
    assert inbox.connections == 1
    proxy.outage(1.0)  # every connection cut; new ones refused for a second
    wait_for(lambda: state(watcher, "INBOX").mode == "reconnecting")
    dropped = time.time()
    append(dovecot, subject="arrived while the watcher was away")  # straight to Dovecot
    wait_for(lambda: inbox.connections == 2 and state(watcher, "INBOX").mode == "watched")
    assert woken(data_dir, dropped)
    assert state(watcher, "INBOX").last_event == "catch-up"


def test_a_server_without_idle_is_left_to_the_poll(proxy, proxied_alice, data_dir, dovecot):
    proxy.rewrites.append(without_capability(b"IDLE"))
    watcher = Watcher(get_settings(), FAST)
    stop = threading.Event()
    watcher.start_pending(stop)
    assert [(s.folder, s.mode) for s in watcher.states] == [
        ("INBOX", "polled"),
        ("Archive", "polled"),
    ]
    assert watcher.threads == [] and proxy.connections == 1  # the probe, logged out
    append(dovecot)
    time.sleep(0.5)
    assert signals.wake_ups(data_dir) == {}


def live_tick(instance, cursor: str | None) -> SensorResult:
    """One evaluation of the new-mail sensor as the watcher's setting builds it (a 2 s tick, a
    60 s poll interval), its new partitions registered."""
    resources = build_resources(get_settings())
    sensor = new_mail_sensor_every(60, 2)
    definitions = Definitions(assets=[raw_messages], sensors=[sensor], resources=resources)
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        repository_def=definitions.get_repository_def(),
        resources=resources,
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_the_sensor_polls_a_woken_account_at_once_and_others_at_their_interval(
    proxied_alice, proxy, dovecot, data_dir, instance, monkeypatch
):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.date().isoformat())
    first = live_tick(instance, None)  # never polled: polled now
    assert proxy.connections == 1
    when = TODAY - timedelta(days=1)
    dovecot.append([("INBOX", message("new", when), when)])
    quiet = live_tick(instance, first.cursor)
    assert proxy.connections == 1 and not quiet.run_requests  # 60 s have not passed
    signals.wake(data_dir, "alice")
    woken = live_tick(instance, quiet.cursor)
    assert proxy.connections == 2
    assert [r.partition_key for r in woken.run_requests] == [
        str(partition_key("alice", when.date()))
    ]
    again = live_tick(instance, woken.cursor)  # the wake-up is answered
    assert proxy.connections == 2 and not again.run_requests
