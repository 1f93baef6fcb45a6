"""raw_messages and the sensor against the real Dovecot behind imap_proxy.py, which reshapes its
FETCH answers as other servers do: spacing and item order, unsolicited responses, requested
messages left out (OK with no data, NIL, Gmail's NO), [UNAVAILABLE], and SELECT without UIDNEXT."""

from __future__ import annotations

import pytest

from mail_pipeline.imap.records import MessageMeta
from mail_pipeline_tests import imap_proxy
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import (
    FOLDERS,
    at,
    pin,
    query,
    run,
    seed,
    server_digests,
    session,
    stored_digests,
    tick,
)
from mail_pipeline_tests.test_flag_sync import commands  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    pin(monkeypatch)


QUIRKS = {
    "space-before-close": [imap_proxy.space_before_close(1)],
    "two-spaces-before-close": [imap_proxy.space_before_close(2)],
    "runs-of-spaces": [imap_proxy.runs_of_spaces],
    "uid-right-after-literal": [imap_proxy.uid_last],
    "unsolicited-fetch-responses": [imap_proxy.unsolicited],
    "all-at-once": [
        imap_proxy.uid_last,
        imap_proxy.runs_of_spaces,
        imap_proxy.space_before_close(2),
        imap_proxy.unsolicited,
    ],
}


@pytest.mark.parametrize("quirk", QUIRKS)
def test_raw_messages_stores_exactly_the_servers_messages_under_each_quirk(
    quirk, dovecot, proxy, proxied_alice, data_dir, instance
):
    seed(dovecot)
    proxy.rewrites = QUIRKS[quirk]
    result = run(instance)
    assert result.success
    assert proxy.rewritten > 0  # the quirk was played
    stored = stored_digests(data_dir)
    assert len(stored) == 12 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT status FROM sync_log")} == {"ok"}
    flags = dict(
        query(data_dir, "SELECT message_id, flags FROM raw_messages WHERE folder = 'INBOX'")
    )
    assert set(flags["m000@example.test"]) == {"\\Flagged", "$Label1"}


LEFT_OUT = {
    "ok-with-no-data": imap_proxy.no_body_for({2}, drop=True),  # UID 2 of both folders
    "nil-body": imap_proxy.no_body_for({2}, drop=False),
    "no-with-the-others": imap_proxy.fetch_no_for({2}),
}


@pytest.mark.parametrize("left_out", LEFT_OUT)
def test_a_requested_message_left_out_is_recorded_and_fetched_next_run(
    left_out, dovecot, proxy, proxied_alice, data_dir, instance
):
    seed(dovecot)
    proxy.rewrites = [LEFT_OUT[left_out]]
    result = run(instance)
    assert result.success
    metadata = result.asset_materializations_for_node("raw_messages")[0].metadata
    assert metadata["uids_not_returned"].value == {"INBOX": [2], "Archive": [2]}
    assert "2 requested message(s) not returned by the server" in metadata["summary"].value
    stored = stored_digests(data_dir)
    assert len(stored) == 10 and set(stored) < server_digests(dovecot)
    logged = dict(query(data_dir, "SELECT folder, struct_pack(status, error) FROM sync_log"))
    for folder in FOLDERS:
        assert logged[folder]["status"] == "partial"
        assert (
            "1 requested message(s)" in logged[folder]["error"]
            and "UIDs 2)" in logged[folder]["error"]
        )

    proxy.rewrites = []
    assert run(instance).success
    stored = stored_digests(data_dir)
    assert len(stored) == 12 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT last_status FROM sync_status")} == {"ok"}


def test_uids_left_out_of_any_fetch_are_warned_about(dovecot, proxy, caplog):
    seed(dovecot)
    proxy.rewrites = [imap_proxy.no_body_for({2}, drop=True, bodies_only=False)]
    with session(dovecot, proxy) as imap:
        imap.select("INBOX")
        metas = imap.fetch_meta([1, 2, 3])
        asked = [*metas, MessageMeta(uid=2, internaldate=metas[0].internaldate, size=1)]
        fetched = list(imap.fetch_messages(asked, max_messages=10, max_bytes=10**9))
    assert [m.uid for m in metas] == [1, 3] and [m.uid for m in fetched] == [1, 3]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert all(
        "returned nothing for 1 of 3 requested UID(s) in 'INBOX': 2 (not stored" in w
        for w in warnings
    )


def test_a_fetch_answered_unavailable_is_retried(dovecot, proxy, proxied_alice, data_dir, instance):
    seed(dovecot)
    proxy.rewrites = [
        imap_proxy.fetch_no_for(
            {2}, b"NO [UNAVAILABLE] Internal error occurred, try again", times=1
        )
    ]
    assert run(instance).success
    assert proxy.rewritten > 0
    stored = stored_digests(data_dir)
    assert len(stored) == 12 and set(stored) == server_digests(dovecot)
    assert {row[0] for row in query(data_dir, "SELECT status FROM sync_log")} == {"ok"}


def test_uidnext_comes_from_status_when_examine_has_none(
    dovecot, proxy, proxied_alice, data_dir, instance
):
    seed(dovecot)
    proxy.rewrites = [imap_proxy.no_uidnext]
    assert run(instance).success
    assert proxy.rewritten > 0
    client = dovecot.client()
    expected = {
        folder: client.folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"] - 1 for folder in FOLDERS
    }
    client.logout()
    assert (
        dict(query(data_dir, "SELECT folder, highest_uid FROM sync_log"))
        == expected
        == {"INBOX": 6, "Archive": 6}
    )


def test_uidnext_is_the_highest_uid_plus_one_when_status_is_refused_too(
    dovecot, proxy, proxied_alice, data_dir, instance
):
    seed(dovecot)
    # INBOX's last message expunged: UIDNEXT stays 7, the highest UID is 5
    client = dovecot.client()
    client.select_folder("INBOX")
    client.delete_messages([6])
    client.expunge()
    client.logout()
    proxy.rewrites = [
        imap_proxy.no_uidnext,
        imap_proxy.refuse_status(b"INBOX"),
        imap_proxy.refuse_status(b"Archive"),
    ]
    assert run(instance).success
    assert dict(query(data_dir, "SELECT folder, highest_uid FROM sync_log")) == {
        "INBOX": 5,
        "Archive": 6,
    }
    assert len(stored_digests(data_dir)) == 11


def test_the_sensor_reads_new_mail_through_every_fetch_quirk(
    dovecot, proxy, proxied_alice, instance
):
    proxy.rewrites = QUIRKS["all-at-once"]
    first = tick(instance, None)
    dovecot.append([("Archive", message("a", at(1)), at(1)), ("INBOX", message("i", at(0)), at(0))])
    found = tick(instance, first.cursor)  # its FETCH of INTERNALDATE and size, reshaped
    assert proxy.rewritten > 0
    assert sorted(str(r.partition_key) for r in found.run_requests) == [
        f"alice|{at(1).date()}",
        f"alice|{at(0).date()}",
    ]


@pytest.mark.parametrize(("greeting", "asked"), [([], 0), ([imap_proxy.plain_greeting], 1)])
def test_capabilities_a_greeting_lists_spare_asking_for_them(
    greeting, asked, dovecot, proxy, commands
):
    """A greeting that lists the capabilities saves a CAPABILITY round trip; one that does not
    gets it asked; either way the session knows what the server offers once signed in."""
    proxy.rewrites = greeting
    with session(dovecot, proxy) as imap:
        offered = imap.capabilities
    assert sum(line.split()[1:2] == ["CAPABILITY"] for line in commands) == asked
    assert {
        b"IMAP4REV1",
        b"CONDSTORE",
        b"QRESYNC",
    } <= offered  # LOGIN's list, not the greeting's shorter one
    assert bool(proxy.rewritten) == bool(greeting)  # the plain greeting was played
