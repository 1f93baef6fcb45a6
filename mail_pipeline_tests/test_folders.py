"""Folder selection for `--all-folders`: SPECIAL-USE flags first, well-known names on servers without them."""

from __future__ import annotations

import pytest

from mail_pipeline.imap.errors import ImapFolderError
from mail_pipeline.imap.folders import split_folders, sync_folders
from mail_pipeline.imap.records import Folder


def folders(
    names: list[str], delimiter: str | None = "/", flags: dict[str, tuple[str, ...]] | None = None
) -> list[Folder]:
    flags = flags or {}
    return [Folder(name, flags.get(name, ("\\HasNoChildren",)), delimiter) for name in names]


@pytest.mark.parametrize(
    ("available", "synced"),
    [
        pytest.param(  # Dovecot with SPECIAL-USE: flags decide, names do not
            folders(
                ["INBOX", "Bin", "Spam", "Archive"],
                flags={"Bin": ("\\Trash",), "Archive": ("\\Archive",)},
            ),
            ["Archive", "INBOX", "Spam"],
            id="special-use-flags",
        ),
        pytest.param(  # Exchange without SPECIAL-USE
            folders(["INBOX", "Deleted Items", "Junk E-mail", "Drafts", "Sent Items", "Archive"]),
            ["Archive", "INBOX", "Sent Items"],
            id="exchange-names",
        ),
        pytest.param(  # Courier/Cyrus: everything under INBOX with "."
            folders(
                [
                    "INBOX",
                    "INBOX.Trash",
                    "INBOX.spam",
                    "INBOX.Drafts",
                    "INBOX.Work",
                    "INBOX.Work.Trash",
                ],
                ".",
            ),
            ["INBOX", "INBOX.Work", "INBOX.Work.Trash"],
            id="inbox-dot-prefix",
        ),
        pytest.param(  # Apple Mail and Yahoo names, INBOX/ prefix
            folders(
                [
                    "INBOX",
                    "Deleted Messages",
                    "Bulk Mail",
                    "INBOX/Junk",
                    "Projects/Trash",
                    "Projects",
                ]
            ),
            ["INBOX", "Projects", "Projects/Trash"],
            id="apple-names-and-slash-prefix",
        ),
        pytest.param(  # a flat server (NIL delimiter)
            folders(["INBOX", "TRASH", "Newsletters"], None),
            ["INBOX", "Newsletters"],
            id="no-delimiter",
        ),
        pytest.param(
            [
                Folder("INBOX", ()),
                Folder("Trash", ("\\Noselect",)),
                Folder("Old", ("\\NonExistent",)),
                Folder("Work", ()),
            ],
            ["INBOX", "Work"],
            id="unselectable",
        ),
    ],
)
def test_all_folders_skips_trash_junk_and_drafts(available, synced):
    assert split_folders(available, ["*"]) == (synced, [])


def test_named_folders_are_kept_as_given_even_when_special():
    available = folders(["INBOX", "Trash", "Work"])
    assert split_folders(available, ["Trash", "Gone", "INBOX"]) == (["Trash", "INBOX"], ["Gone"])
    with pytest.raises(
        ImapFolderError, match=r"unknown folder.*'Gone'.*the server has: INBOX, Trash, Work"
    ):
        sync_folders(available, ["INBOX", "Gone"])
