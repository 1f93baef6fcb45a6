"""What changed in a mailbox since the sensor last looked: the cursor logic, pure.

Per folder the cursor keeps (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) from STATUS (RFC 3501 6.3.10,
RFC 7162 3.1.2.1). One STATUS per folder answers "anything new?" without touching messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from mail_pipeline.mail.imap import FolderStatus


class Change(Enum):
    NONE = "none"                   # nothing new (a modseq-only change is flags or expunges)
    NEW_UIDS = "new_uids"           # UIDNEXT moved: fetch INTERNALDATEs from the old UIDNEXT on
    NEW_FOLDER = "new_folder"       # never seen: every in-window day of it
    UIDVALIDITY = "uidvalidity"     # UIDs void: every in-window day of the account


@dataclass(frozen=True)
class FolderCursor:
    uidvalidity: int
    uidnext: int
    highestmodseq: int | None = None

    @classmethod
    def of(cls, status: FolderStatus) -> FolderCursor:
        return cls(status.uidvalidity, status.uidnext, status.highestmodseq)


def classify(previous: FolderCursor | None, current: FolderStatus) -> Change:
    if previous is None:
        return Change.NEW_FOLDER
    if previous.uidvalidity != current.uidvalidity:
        return Change.UIDVALIDITY
    if current.uidnext > previous.uidnext:
        return Change.NEW_UIDS
    return Change.NONE


# account -> folder -> cursor
Cursors = dict[str, dict[str, FolderCursor]]


def load_cursors(text: str | None) -> Cursors:
    if not text:
        return {}
    data = json.loads(text)
    return {
        account: {folder: FolderCursor(*values) for folder, values in folders.items()}
        for account, folders in data.items()
    }


def dump_cursors(cursors: Cursors) -> str:
    return json.dumps(
        {account: {folder: [c.uidvalidity, c.uidnext, c.highestmodseq] for folder, c in sorted(folders.items())}
         for account, folders in sorted(cursors.items())},
        separators=(",", ":"),
    )


@dataclass
class Poll:
    days: set                        # UTC days that received mail (or need a re-sync)
    cursors: dict[str, FolderCursor]  # the account's cursors after this poll
    changes: dict[str, Change]


def poll_account(session, folders: list[str], previous: dict[str, FolderCursor], first_day, last_day) -> Poll:
    """STATUS every folder; only where something changed, fetch INTERNALDATEs (never bodies)
    of the UIDs concerned and return the in-window days they fall on."""
    from datetime import timedelta

    from mail_pipeline.mail.sync import utc_day

    poll = Poll(days=set(), cursors={}, changes={})
    window = {first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)}
    session.unselect()
    statuses = {folder: session.status(folder) for folder in folders}
    for folder, status in statuses.items():
        change = classify(previous.get(folder), status)
        poll.changes[folder] = change
        poll.cursors[folder] = FolderCursor.of(status)
        if change is Change.NONE:
            continue
        if change is Change.UIDVALIDITY:
            poll.days |= window
            continue
        session.select(folder)
        if change is Change.NEW_UIDS:
            uids = session.search_from(previous[folder].uidnext)
        else:  # a folder never seen: whatever it holds inside the window
            uids = session.search_between(first_day - timedelta(days=1), last_day + timedelta(days=2))
        poll.days |= {utc_day(m.internaldate) for m in session.fetch_meta(uids)} & window
    session.unselect()
    return poll
