"""The copy follows the server: flags set and cleared, expunges and moves reach `emails` after one
sensor tick and the run it requests, on a real Dovecot with CONDSTORE/QRESYNC and on the same
Dovecot advertising neither, and no message body is downloaded again."""

from __future__ import annotations

import imaplib
import shutil
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from dagster import materialize

from mail_pipeline import search
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline.sync import changes
from mail_pipeline_tests.conftest import _server_root, _start, register_user
from mail_pipeline_tests.graph import CHECKS
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.servers import WITHOUT_CONDSTORE, WITHOUT_QRESYNC, Dovecot
from mail_pipeline_tests.test_pipeline_e2e import GRAPH
from mail_pipeline_tests.test_retention import files_containing
from mail_pipeline_tests.test_sensor import tick  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
UTC = UTC
TODAY = datetime(2026, 11, 20, tzinfo=UTC)
DAY = TODAY - timedelta(days=1) + timedelta(hours=9)
MARKERS = {n: f"zqxmarker{n}" for n in ("flag", "unflag", "expunge", "move", "stay")}


CAPABILITIES = {
    "condstore": "",
    "condstore_only": WITHOUT_QRESYNC,
    "without_condstore": WITHOUT_CONDSTORE,
}


@pytest.fixture(params=list(CAPABILITIES))
def server(request, data_dir):
    """A fresh Dovecot (with CONDSTORE/QRESYNC, QRESYNC hidden, or both hidden) and account 'alice' on it."""
    root = _server_root("mp-dovecot-")
    dovecot = _start(lambda: Dovecot(root, imap_capability=CAPABILITIES[request.param]))
    client = dovecot.client()
    client.create_folder("Archive")
    client.logout()
    yield dovecot
    dovecot.stop()
    shutil.rmtree(root, ignore_errors=True)


def register(dovecot, data_dir, policy: str):
    register_user(
        dovecot, data_dir / "accounts.json", folders=("INBOX", "Archive"), on_server_delete=policy
    )


@pytest.fixture
def commands(monkeypatch) -> list[str]:
    """Every command line the client sends (imaplib writes each through IMAP4.send); sign-ins
    without their arguments, so no password reaches a test report."""
    sent: list[str] = []
    send = imaplib.IMAP4.send

    def recording(self, data: bytes):
        if not data[:1].isspace():
            line = data.decode(errors="replace").split("\r\n")[0]
            words = line.split()
            sent.append(
                " ".join(words[:2])
                if len(words) > 1 and words[1].upper() in ("LOGIN", "AUTHENTICATE")
                else line
            )
        return send(self, data)

    monkeypatch.setattr(imaplib.IMAP4, "send", recording)
    return sent


def body_fetches(sent: list[str]) -> list[str]:
    return [line for line in sent if "FETCH" in line.upper() and "BODY.PEEK[]" in line.upper()]


def seed(dovecot) -> dict[str, int]:
    """One message per marker in INBOX on DAY; `unflag` starts \\Seen. Returns marker -> UID."""
    dovecot.append(
        [
            (
                "INBOX",
                message(name, DAY, subject=f"About {name}", body=f"Note {marker} here.\r\n"),
                DAY,
            )
            for name, marker in MARKERS.items()
        ]
    )
    client = dovecot.client()
    client.select_folder("INBOX")
    uids = dict(zip(MARKERS, sorted(client.search(["ALL"]))))
    client.add_flags([uids["unflag"]], [b"\\Seen"])
    client.logout()
    return uids


def change_on_server(dovecot, uids) -> None:
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags([uids["flag"]], [b"\\Flagged", b"$Work"])
    client.remove_flags([uids["unflag"]], [b"\\Seen"])
    client.move([uids["move"]], "Archive")
    client.delete_messages([uids["expunge"]])
    client.expunge()
    client.logout()


def run_day(instance):
    result = materialize(
        GRAPH + CHECKS,
        partition_key=partition_key("alice", DAY.date()),
        resources=build_resources(get_settings()),
        instance=instance,
    )
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []  # the contracts between stages hold after a reconciliation too
    return result


def emails_by_subject(data_dir) -> dict[str, dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(
            "SELECT subject, seen, flagged, keywords, deleted_at, locations FROM emails"
        )
        columns = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}


def synced_then_changed(server, data_dir, instance, tick, monkeypatch, policy):
    """Sync DAY, change the mailbox on the server, tick once; the tick's result and cursor."""
    # the fallback's cadence has come round
    monkeypatch.setenv("MAIL_PIPELINE_FLAG_RECONCILE_INTERVAL", "0")
    register(server, data_dir, policy)
    uids = seed(server)
    first = tick(None)
    instance.add_dynamic_partitions("accounts", ["alice"])
    run_day(instance)
    assert not tick(first.cursor).run_requests  # nothing changed yet: nothing requested
    change_on_server(server, uids)
    return tick(first.cursor)


@pytest.mark.parametrize("policy", ["keep", "mirror"])
def test_flags_expunges_and_moves_reach_emails_without_bodies(
    server,
    data_dir,
    instance,
    tick,
    monkeypatch,
    commands,
    policy,
):
    changed = synced_then_changed(server, data_dir, instance, tick, monkeypatch, policy)
    assert [str(r.partition_key) for r in changed.run_requests] == [f"alice|{DAY.date()}"]
    commands.clear()
    result = run_day(instance)
    assert body_fetches(commands) == []

    emails = emails_by_subject(data_dir)
    # Nothing was parsed, chunked or embedded again: flags and deletions are metadata.
    chunked = result.asset_materializations_for_node("email_chunks")[0].metadata
    assert chunked["emails_chunks_reused"].value == len(emails) == {"keep": 5, "mirror": 4}[policy]
    assert (
        result.asset_materializations_for_node("email_embeddings")[0]
        .metadata["chunks_embedded"]
        .value
        == 0
    )
    assert emails["About flag"]["flagged"] and emails["About flag"]["keywords"] == ["$Work"]
    assert not emails["About unflag"]["seen"]
    moved = emails["About move"]
    assert [loc["folder"] for loc in moved["locations"]] == ["Archive"] and moved[
        "deleted_at"
    ] is None
    assert emails["About stay"]["deleted_at"] is None
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert (
            con.execute(
                "SELECT count(*) FROM raw_messages WHERE message_id = 'move@example.test'"
            ).fetchone()[0]
            == 1
        )
    if policy == "keep":
        assert emails["About expunge"]["deleted_at"] is not None
        hits = search(MARKERS["expunge"], mode="text")
        assert [h.subject for h in hits] == ["About expunge"] and hits[0].deleted_at is not None
        assert search(MARKERS["expunge"], mode="text", exclude_deleted=True) == []
    else:
        assert "About expunge" not in emails
        assert search(MARKERS["expunge"], mode="text") == []
        # LanceDB keeps chunk text uncompressed (the retention test relies on it too): no old version holds it.
        assert files_containing(data_dir, MARKERS["expunge"]) == []
        assert files_containing(data_dir / "lancedb", MARKERS["stay"])


def test_uidvalidity_reset_with_the_same_content_downloads_nothing(
    server,
    data_dir,
    instance,
    tick,
    monkeypatch,
    commands,
):
    register(server, data_dir, "keep")
    server.append(
        [("Archive", message(f"a{n}", DAY, subject=f"Archived {n}"), DAY) for n in range(3)]
    )
    first = tick(None)
    instance.add_dynamic_partitions("accounts", ["alice"])
    run_day(instance)
    before = changes.load_cursors(first.cursor)["alice"]["Archive"].uidvalidity

    client = server.client()
    client.delete_folder("Archive")
    time.sleep(1.1)  # Dovecot derives a new UIDVALIDITY from the clock's seconds
    client.logout()
    server.append(
        [("Archive", message(f"a{n}", DAY, subject=f"Archived {n}"), DAY) for n in range(3)]
    )

    reset = tick(first.cursor)
    after = changes.load_cursors(reset.cursor)["alice"]["Archive"].uidvalidity
    assert after != before and reset.run_requests
    commands.clear()
    run_day(instance)
    assert body_fetches(commands) == []
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT uidvalidity, uid, deleted_at FROM raw_messages WHERE folder = 'Archive' ORDER BY uid"
        ).fetchall()
        locations = con.execute("SELECT locations FROM emails ORDER BY subject").fetchall()
    client = server.client()
    client.select_folder("Archive")
    on_server = sorted(client.search(["ALL"]))
    client.logout()
    assert rows == [(after, uid, None) for uid in on_server]
    assert [[(loc["uidvalidity"], loc["uid"]) for loc in row[0]] for row in locations] == [
        [(after, uid)] for uid in on_server
    ]


def test_without_condstore_flags_are_compared_only_at_their_interval(
    data_dir,
    instance,
    tick,
    monkeypatch,
    commands,
):
    root = _server_root("mp-dovecot-")
    dovecot = _start(lambda: Dovecot(root, imap_capability=WITHOUT_CONDSTORE))
    try:
        monkeypatch.setenv("MAIL_PIPELINE_FLAG_RECONCILE_INTERVAL", "3600")
        client = dovecot.client()
        client.create_folder("Archive")
        client.logout()
        register(dovecot, data_dir, "keep")
        uids = seed(dovecot)
        first = tick(None)
        instance.add_dynamic_partitions("accounts", ["alice"])
        run_day(instance)
        client = dovecot.client()
        client.select_folder("INBOX")
        client.add_flags([uids["flag"]], [b"\\Flagged"])
        client.logout()

        commands.clear()
        quiet = tick(first.cursor)  # inside the interval: STATUS only, the change waits
        assert not quiet.run_requests
        assert [line.split()[1] for line in commands] == ["LOGIN", "STATUS", "STATUS", "LOGOUT"]

        monkeypatch.setenv("MAIL_PIPELINE_FLAG_RECONCILE_INTERVAL", "0")  # the interval has passed
        due = tick(quiet.cursor)
        assert [str(r.partition_key) for r in due.run_requests] == [f"alice|{DAY.date()}"]
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
