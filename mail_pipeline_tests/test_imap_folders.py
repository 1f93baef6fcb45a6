"""Folders that vanish or refuse, as other servers word it (through imap_proxy.py): decided by LIST,
never stopping the account's other folders, in the sensor and in runs; and --all-folders on a
server without SPECIAL-USE."""

from __future__ import annotations

from datetime import datetime

import pytest

from mail_pipeline.sync import changes
from mail_pipeline_tests import imap_proxy
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.proxied_mailbox import (
    UTC,
    at,
    pin,
    query,
    register,
    run,
    seed,
    stored_digests,
    tick,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    pin(monkeypatch)


@pytest.mark.parametrize(
    "wording", [b"Mailbox does not exist", b"Mailbox does not exist, or must be subscribed to."]
)
def test_a_missing_folder_in_other_words_never_stops_the_sensor(
    wording, dovecot, proxy, proxied_alice, instance
):
    proxy.rewrites = [imap_proxy.no_wording(wording)]
    dovecot.append([("Archive", message("a", at(2)), at(2))])
    cursor = tick(instance, None).cursor
    client = dovecot.client()
    client.delete_folder("Archive")
    client.logout()

    quiet = tick(instance, cursor)
    assert proxy.rewritten > 0  # STATUS Archive was refused in the other wording
    assert "alice: folder 'Archive' does not exist on the server" in quiet.skip_reason.skip_message
    dovecot.append([("INBOX", message("new", at(0)), at(0))])
    found = tick(instance, quiet.cursor)
    assert [str(r.partition_key) for r in found.run_requests] == [f"alice|{at(0).date()}"]


def test_a_folder_that_refuses_status_but_is_listed_keeps_its_cursor(
    dovecot, proxy, proxied_alice, instance
):
    first = tick(instance, None)
    dovecot.append([("Archive", message("a", at(1)), at(1)), ("INBOX", message("i", at(0)), at(0))])

    proxy.rewrites = [imap_proxy.refuse_status(b"Archive")]
    refused = tick(instance, first.cursor)
    assert proxy.rewritten > 0
    assert [str(r.partition_key) for r in refused.run_requests] == [f"alice|{at(0).date()}"]
    assert (
        changes.load_cursors(refused.cursor)["alice"]["Archive"]
        == changes.load_cursors(first.cursor)["alice"]["Archive"]
    )

    proxy.rewrites = []
    again = tick(instance, refused.cursor)  # Archive's new mail is still found from the kept cursor
    assert [str(r.partition_key) for r in again.run_requests] == [f"alice|{at(1).date()}"]


def test_a_folder_deleted_between_list_and_examine_fails_alone(
    dovecot, proxy, proxied_alice, data_dir, instance
):
    seed(dovecot)
    assert run(instance).success

    def delete_archive():
        client = dovecot.client()  # straight to Dovecot, while the run waits for its LIST
        client.delete_folder("Archive")
        client.logout()

    proxy.rewrites = [
        imap_proxy.after_first(b"* LIST ", delete_archive),
        imap_proxy.no_wording(b"Mailbox does not exist"),
    ]
    dovecot.append(
        [
            (
                "INBOX",
                message("late", datetime(2026, 11, 10, 18, tzinfo=UTC)),
                datetime(2026, 11, 10, 18, tzinfo=UTC),
            )
        ]
    )
    assert run(instance).success
    # INBOX's new message, and Archive's stored ones kept
    assert len(stored_digests(data_dir)) == 13
    status = dict(query(data_dir, "SELECT folder, last_status FROM sync_status"))
    assert status == {"INBOX": "ok", "Archive": "missing"}


def test_a_folder_deleted_between_status_and_examine_leaves_the_sensor_polling(
    dovecot, proxy, proxied_alice, instance
):
    first = tick(instance, None)
    dovecot.append([("Archive", message("a", at(1)), at(1)), ("INBOX", message("i", at(0)), at(0))])

    deleted = []

    def delete_archive():
        client = dovecot.client()  # straight to Dovecot, after the sensor saw Archive's new UIDNEXT
        client.delete_folder("Archive")
        client.logout()
        deleted.append("Archive")

    proxy.rewrites = [
        imap_proxy.after_first(b"* STATUS Archive ", delete_archive),
        imap_proxy.no_wording(b"Mailbox does not exist"),
    ]
    found = tick(instance, first.cursor)
    assert deleted == ["Archive"]
    assert [str(r.partition_key) for r in found.run_requests] == [f"alice|{at(0).date()}"]
    assert set(changes.load_cursors(found.cursor)["alice"]) == {"INBOX"}


def test_all_folders_skips_trash_junk_and_drafts_by_name_without_special_use(
    dovecot, proxy, data_dir, instance
):
    register(dovecot, proxy, data_dir, folders=("*",))
    dovecot.append(
        [
            (folder, message(folder, at(1)), at(1))
            for folder in ("INBOX", "Trash", "Junk", "Drafts", "Projects")
        ]
    )
    proxy.rewrites = [imap_proxy.no_special_use]
    first = tick(instance, None)
    assert proxy.rewritten > 0  # Dovecot's \Trash, \Junk and \Drafts were hidden
    assert set(changes.load_cursors(first.cursor)["alice"]) == {"INBOX", "Projects"}
