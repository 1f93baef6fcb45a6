"""The sensor's cursor logic (pure, table-driven) and poll_account against a real Dovecot."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mail_pipeline.imap.connection import config_for
from mail_pipeline.imap.records import FolderStatus
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.settings import get_settings
from mail_pipeline.sync import changes
from mail_pipeline.sync.changes import Change, FolderCursor
from mail_pipeline_tests.mailgen import message

UTC = UTC


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (FolderCursor(7, 10, 100), FolderStatus(7, 10, 9, 100), Change.NONE),
        (FolderCursor(7, 10, 100), FolderStatus(7, 10, 9, 105), Change.NONE),  # flags only
        (FolderCursor(7, 10, 100), FolderStatus(7, 12, 11, 110), Change.NEW_UIDS),
        (FolderCursor(7, 10, None), FolderStatus(7, 11, 10, None), Change.NEW_UIDS),  # no CONDSTORE
        (FolderCursor(7, 10, 100), FolderStatus(8, 3, 2, 4), Change.UIDVALIDITY),
        (FolderCursor(7, 10, 100), FolderStatus(8, 10, 9, 100), Change.UIDVALIDITY),
        (None, FolderStatus(7, 10, 9, 100), Change.NEW_FOLDER),
        (FolderCursor(7, 10, 100), None, Change.REMOVED),  # STATUS: the folder does not exist
        (None, None, Change.REMOVED),
    ],
)
def test_classify(previous, current, expected):
    assert changes.classify(previous, current) is expected


@pytest.mark.parametrize(
    ("folders", "expected"),
    [
        (["Archive", "INBOX"], ["INBOX", "Archive"]),
        (["Archive", "inbox", "Work"], ["inbox", "Archive", "Work"]),  # INBOX is case-insensitive
        (["Archive", "Work"], ["Archive", "Work"]),
        (["INBOX/Sub", "INBOX"], ["INBOX", "INBOX/Sub"]),
        ([], []),
    ],
)
def test_inbox_first(folders, expected):
    assert changes.inbox_first(folders) == expected


def test_cursor_round_trip_and_empty():
    cursors = {
        "a": {"INBOX": FolderCursor(1, 5, None), "Work/2026": FolderCursor(2, 9, 44)},
        "b": {},
    }
    assert changes.load_cursors(changes.dump_cursors(cursors)) == cursors
    assert changes.load_cursors(None) == {} and changes.load_cursors("") == {}


def test_cursor_keeps_listing_times_apart_from_accounts():
    cursors = {"a": {"INBOX": FolderCursor(1, 5, None)}}
    text = changes.dump_cursors(cursors, {"a": 1700000000.5})
    assert changes.load_cursors(text) == cursors and changes.load_listed(text) == {
        "a": 1700000000.5
    }
    old = '{"a":{"INBOX":[1,5,null]}}'  # written before listing times were kept
    assert (
        changes.load_cursors(old) == cursors
        and changes.load_listed(old) == {}
        and changes.load_listed(None) == {}
    )


@pytest.mark.integration
def test_poll_account_days_and_cursor(dovecot, alice):
    dovecot.append(
        [
            (
                "INBOX",
                message("p1", datetime(2026, 11, 18, 10, tzinfo=UTC)),
                datetime(2026, 11, 18, 10, tzinfo=UTC),
            ),
            (
                "Archive",
                message("p2", datetime(2026, 11, 19, 23, 59, tzinfo=UTC)),
                datetime(2026, 11, 19, 23, 59, tzinfo=UTC),
            ),
            (
                "INBOX",
                message("old", datetime(2026, 9, 1, 10, tzinfo=UTC)),
                datetime(2026, 9, 1, 10, tzinfo=UTC),
            ),
        ]
    )
    first, last = date(2026, 10, 21), date(2026, 11, 20)
    from mail_pipeline.storage import crypto
    from mail_pipeline.storage.accounts import AccountRegistry

    password = AccountRegistry(get_settings().accounts_path).password(alice, crypto.load_cipher())
    with ImapSession(config_for(alice, get_settings()), password) as session:
        poll = changes.poll_account(session, ["INBOX", "Archive"], {}, first, last)
        assert poll.days == {
            date(2026, 11, 18),
            date(2026, 11, 19),
        }  # the September message is outside
        assert set(poll.changes.values()) == {Change.NEW_FOLDER}
        again = changes.poll_account(session, ["INBOX", "Archive"], poll.cursors, first, last)
        assert again.days == set() and set(again.changes.values()) == {Change.NONE}
        dovecot.append(
            [
                (
                    "Archive",
                    message("p3", datetime(2026, 11, 20, 1, tzinfo=UTC)),
                    datetime(2026, 11, 20, 1, tzinfo=UTC),
                )
            ]
        )
        third = changes.poll_account(session, ["INBOX", "Archive"], again.cursors, first, last)
        assert third.days == {date(2026, 11, 20)}
        assert third.changes == {"INBOX": Change.NONE, "Archive": Change.NEW_UIDS}


@pytest.mark.integration
def test_poll_account_removed_and_discovered_folders(dovecot, alice):
    dovecot.append(
        [
            (
                "Archive",
                message("a1", datetime(2026, 11, 19, 9, tzinfo=UTC)),
                datetime(2026, 11, 19, 9, tzinfo=UTC),
            )
        ]
    )
    first, last = date(2026, 10, 21), date(2026, 11, 20)
    from mail_pipeline.storage import crypto
    from mail_pipeline.storage.accounts import AccountRegistry

    password = AccountRegistry(get_settings().accounts_path).password(alice, crypto.load_cipher())
    with ImapSession(config_for(alice, get_settings()), password) as session:
        poll = changes.poll_account(session, ["Gone", "INBOX", "Archive"], {}, first, last)
        assert poll.changes == {
            "INBOX": Change.NEW_FOLDER,
            "Archive": Change.NEW_FOLDER,
            "Gone": Change.REMOVED,
        }
        assert set(poll.cursors) == {"INBOX", "Archive"} and poll.removed == ["Gone"]
        assert poll.days == {date(2026, 11, 19)}  # the other folders are polled as ever

        dovecot.append(
            [
                (
                    "Projects",
                    message("n1", datetime(2026, 11, 20, 8, tzinfo=UTC)),
                    datetime(2026, 11, 20, 8, tzinfo=UTC),
                )
            ]
        )
        found = changes.poll_account(
            session,
            ["INBOX", "Archive"],
            poll.cursors,
            first,
            last,
            discover=lambda: ["INBOX", "Projects"],
        )
        assert found.changes == {
            "INBOX": Change.NONE,
            "Projects": Change.NEW_FOLDER,
        }  # Archive no longer wanted
        assert found.days == {date(2026, 11, 20)} and set(found.cursors) == {"INBOX", "Projects"}
