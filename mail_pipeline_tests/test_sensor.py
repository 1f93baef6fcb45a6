"""new_mail_sensor evaluated with build_sensor_context against a real Dovecot."""

from __future__ import annotations

import imaplib
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    DeleteDynamicPartitionsRequest,
    SensorResult,
    build_sensor_context,
)

from mail_pipeline.defs.resources import build_resources
from mail_pipeline.defs.sensors import new_mail_sensor_every
from mail_pipeline.settings import get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline.sync import changes
from mail_pipeline.watch.launch import partition_tags
from mail_pipeline_tests.graph import email_chunks, email_embeddings, emails, raw_messages
from mail_pipeline_tests.mailgen import message

pytestmark = pytest.mark.integration
UTC = UTC
TODAY = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def tick(data_dir, instance, monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.date().isoformat())
    resources = build_resources(get_settings())
    defs = Definitions(
        assets=[raw_messages, emails, email_chunks, email_embeddings],
        sensors=[new_mail_sensor_every(60)],
        resources=resources,
    )
    repository = defs.get_repository_def()

    def evaluate(cursor: str | None) -> SensorResult:
        # Settings as the environment has them now (a code server re-reads them when it reloads).
        resources = build_resources(get_settings())
        context = build_sensor_context(
            instance=instance, cursor=cursor, repository_def=repository, resources=resources
        )
        result = new_mail_sensor_every(60)(context)
        for request in result.dynamic_partitions_requests or []:
            if isinstance(request, DeleteDynamicPartitionsRequest):
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
            else:
                instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys)
                )
        return result

    return evaluate


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The IMAP commands the client writes, as NAME or "STATUS folder": imaplib writes every
    command (imapclient's too) through IMAP4.send, before TLS; a chunk that starts a command
    starts with its tag (the others are literals and line ends)."""
    commands: list[str] = []
    send = imaplib.IMAP4.send

    def recording(self, data: bytes):
        words = data.decode(errors="replace").split()
        if len(words) >= 2 and not data[:1].isspace():
            name = words[1].upper()
            commands.append(f"STATUS {words[2].strip(chr(34))}" if name == "STATUS" else name)
        return send(self, data)

    monkeypatch.setattr(imaplib.IMAP4, "send", recording)
    return commands


def day(n: int) -> datetime:
    return TODAY - timedelta(days=n) + timedelta(hours=9)


def all_folders_account(dovecot, data_dir):
    """Alice's mailbox registered as an account syncing every folder."""
    return AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug="alice",
            email="alice@example.test",
            host="127.0.0.1",
            port=dovecot.tls_port,
            username="alice",
            password_token="",
            ca_file=dovecot.ca_file,
            folders=("*",),
        ),
        dovecot.users["alice"],
        crypto.load_cipher(),
    )


def test_sensor_ticks(dovecot, alice, tick):
    dovecot.append([("INBOX", message(f"d{n}", day(n)), day(n)) for n in (1, 2, 3)])
    first = tick(None)
    # A new account: its partition is registered and its three days become one run of `ingest`
    # over the range, under the one-run-per-account limit.
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["alice"]]
    [backfill] = first.run_requests
    assert not backfill.requires_backfill_daemon()
    assert backfill.tags["dagster/asset_partition_range_start"] == f"alice|{day(3).date()}"
    assert backfill.tags["dagster/asset_partition_range_end"] == f"alice|{day(1).date()}"
    assert (
        backfill.tags["mail_pipeline/account"] == "alice"
        and "dagster/partition/account" not in backfill.tags
    )

    second = tick(first.cursor)
    assert not second.run_requests and "no new mail" in second.skip_reason.skip_message

    dovecot.append([("Archive", message("new", day(0)), day(0))])
    third = tick(second.cursor)
    assert [str(r.partition_key) for r in third.run_requests] == [f"alice|{day(0).date()}"]
    # The same mailbox state gives the same run key: a repeated tick is harmless.
    assert tick(second.cursor).run_requests[0].run_key == third.run_requests[0].run_key


def test_runs_are_requested_of_the_ingest_job():
    # An asset-selection sensor has its requests rewritten to the implicit __ASSET_JOB, which is
    # then the name every run shows in the UI.
    sensor = new_mail_sensor_every(60)
    assert sensor.job_name == "ingest" and sensor.asset_selection is None


def test_one_failing_account_does_not_stop_the_others(dovecot, alice, data_dir, tick):
    AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug="broken",
            email="b@example.test",
            host="127.0.0.1",
            port=dovecot.tls_port,
            username="alice",
            password_token="",
            ca_file=dovecot.ca_file,
        ),
        "wrong-password",
        crypto.load_cipher(),
    )
    dovecot.append([("INBOX", message("x", day(1)), day(1))])
    result = tick(None)
    assert [str(r.partition_key) for r in result.run_requests] == [f"alice|{day(1).date()}"]
    cursors = changes.load_cursors(result.cursor)
    # never moves past mail it did not request
    assert "alice" in cursors and "broken" not in cursors
    assert sorted(result.dynamic_partitions_requests[0].partition_keys) == ["alice", "broken"]


def test_noop_tick_is_login_and_one_status_per_folder(dovecot, alice, tick, sent):
    first = tick(None)
    sent.clear()
    again = tick(first.cursor)
    assert "no new mail" in again.skip_reason.skip_message
    # No CAPABILITY: the greeting lists them (imap/wire.py). No LIST for named folders, and
    # INBOX first: on Dovecot a STATUS INBOX after a command that reads the mailbox list index
    # grows with the mailbox.
    assert sent == ["LOGIN", "STATUS INBOX", "STATUS Archive", "LOGOUT"]


def test_deleted_folder_is_reported_and_the_others_still_polled(dovecot, alice, tick):
    dovecot.append([("Archive", message("a", day(2)), day(2))])
    cursor = tick(None).cursor
    client = dovecot.client()
    client.delete_folder("Archive")
    client.logout()

    quiet = tick(cursor)
    assert not quiet.run_requests
    assert "no new mail" in quiet.skip_reason.skip_message
    assert "alice: folder 'Archive' does not exist on the server" in quiet.skip_reason.skip_message
    assert set(changes.load_cursors(quiet.cursor)["alice"]) == {"INBOX"}

    dovecot.append([("INBOX", message("new", day(0)), day(0))])
    result = tick(quiet.cursor)
    assert [str(r.partition_key) for r in result.run_requests] == [f"alice|{day(0).date()}"]


def test_all_folders_account_finds_new_folders_at_the_discovery_interval(
    dovecot, data_dir, tick, sent, monkeypatch
):
    monkeypatch.setenv("MAIL_PIPELINE_FOLDER_DISCOVERY_INTERVAL", "3600")
    all_folders_account(dovecot, data_dir)
    dovecot.append([("INBOX", message("d1", day(1)), day(1))])
    first = tick(None)  # the first tick LISTs: INBOX only (Trash, Junk, Drafts are skipped)
    assert set(changes.load_cursors(first.cursor)["alice"]) == {"INBOX"}

    dovecot.append([("Projects", message("p", day(0)), day(0))])
    sent.clear()
    between = tick(first.cursor)  # inside the interval: STATUS of the known folders, no LIST
    assert not between.run_requests and sent == ["LOGIN", "STATUS INBOX", "LOGOUT"]

    monkeypatch.setenv("MAIL_PIPELINE_FOLDER_DISCOVERY_INTERVAL", "0")  # the interval has passed
    sent.clear()
    found = tick(between.cursor)
    assert [str(r.partition_key) for r in found.run_requests] == [f"alice|{day(0).date()}"]
    assert sent[:4] == ["LOGIN", "STATUS INBOX", "LIST", "STATUS Projects"]
    assert changes.load_listed(found.cursor)["alice"] > changes.load_listed(first.cursor)["alice"]


def test_account_partitions_the_registry_does_not_know_are_removed(alice, instance, tick):
    # As the UI's "Add a partition" would leave it: a partition no account stands behind.
    instance.add_dynamic_partitions("accounts", ["alice", "ghost"])
    result = tick(None)
    assert [type(r).__name__ for r in result.dynamic_partitions_requests] == [
        "DeleteDynamicPartitionsRequest"
    ]
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["ghost"]
    assert instance.get_dynamic_partitions("accounts") == ["alice"]
    assert not tick(result.cursor).dynamic_partitions_requests


def test_accounts_are_polled_at_once_and_a_failing_one_is_reported(dovecot, proxy, data_dir, tick):
    """Every connection's greeting is held (through the proxy) until all three accounts have
    connected: polled one after another, the first would wait alone and the barrier break."""
    import threading

    from mail_pipeline_tests.imap_proxy import Response

    accounts = [("alice", "alice", dovecot.users["alice"]), ("bob", "bob", dovecot.users["bob"])]
    accounts.append(("broken", "alice", "wrong-password"))
    together = threading.Barrier(len(accounts), timeout=10)  # < the connect timeout (15 s)
    broken_barrier = []
    greeted = threading.local()  # the proxy answers each connection on a thread of its own

    def hold_greeting(response: Response) -> list[Response]:
        if not getattr(greeted, "done", False):
            greeted.done = True
            try:
                together.wait()
            except threading.BrokenBarrierError:
                broken_barrier.append(response)
        return [response]

    proxy.rewrites.append(hold_greeting)
    registry = AccountRegistry(data_dir / "accounts.json")
    for slug, user, password in accounts:
        client = dovecot.client(user)
        client.create_folder("Archive") if not client.folder_exists("Archive") else None
        client.logout()
        registry.add(
            Account(
                slug=slug,
                email=f"{user}@example.test",
                host="127.0.0.1",
                port=proxy.port,
                username=user,
                password_token="",
                security="plain",
                folders=("INBOX", "Archive"),
            ),
            password,
            crypto.load_cipher(),
        )
    dovecot.append([("INBOX", message("a", day(1)), day(1))], user="alice")
    dovecot.append([("Archive", message("b", day(2)), day(2))], user="bob")

    first = tick(None)
    assert sorted(str(r.partition_key) for r in first.run_requests) == [
        f"alice|{day(1).date()}",
        f"bob|{day(2).date()}",
    ]
    assert sorted(changes.load_cursors(first.cursor)) == ["alice", "bob"]
    second = tick(first.cursor)
    reason = second.skip_reason.skip_message
    assert reason.startswith("no new mail; failed: broken: error (auth)"), reason
    assert "wrong-password" not in reason
    assert proxy.connections == 6 and not broken_barrier


@pytest.mark.parametrize(
    ("status", "requested"),
    [
        # QUEUED is in the same list (defs.sensors.NOT_STARTED), but a queued run needs a code
        # location's origin to be stored; the live end-to-end test queues real ones.
        (DagsterRunStatus.NOT_STARTED, False),
        (DagsterRunStatus.STARTING, False),
        (DagsterRunStatus.STARTED, True),  # it may have fetched before the new mail
        (DagsterRunStatus.SUCCESS, True),
    ],
)
def test_today_is_not_requested_again_while_a_run_of_it_waits_to_start(
    dovecot, alice, instance, tick, status, requested
):
    first = tick(None)
    dovecot.append([("INBOX", message("new", day(0)), day(0))])
    # The run the watcher requested the moment IDLE reported EXISTS (watch/launch.py).
    tags = partition_tags("alice", day(0).date())
    instance.add_run(DagsterRun(job_name="ingest", run_id="watcher-run", status=status, tags=tags))
    second = tick(first.cursor)
    today = [str(r.partition_key) for r in second.run_requests or []]
    assert today == ([f"alice|{day(0).date()}"] if requested else [])
    # The cursor moved on either way: the next tick requests nothing for this mail.
    assert not tick(second.cursor).run_requests
