"""Which stored days a folder's flag changes and expunges touch, without fetching a body.

With CONDSTORE the sensor asks only for what changed since the cursor's HIGHESTMODSEQ (RFC 7162),
and with QRESYNC also for the UIDs expunged since. Without them, a MESSAGES count below what the
cursor expects means expunges (then one UID SEARCH finds them), and flags are compared in UID
ranges on the account's own, slower cadence: never a re-scan on every tick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from mail_pipeline.imap import modseq
from mail_pipeline.imap.records import FolderStatus
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.storage import state


@dataclass(frozen=True)
class StoredMessage:
    day: date
    flags: frozenset[str]


# (folder, uidvalidity) -> UID -> what the lake holds of it (messages still on the server only)
StoredIndex = dict[tuple[str, int], dict[int, StoredMessage]]


def read_stored(lake, account: str, days: Iterable[date]) -> StoredIndex:
    """What the lake's raw_messages hold of the account on `days` (no raw bytes read), column by
    column: a dict per stored row made the sensor's tick 5 times slower at 20,000 messages."""
    index: StoredIndex = {}
    lasting: dict[tuple, frozenset[str]] = {}  # a mailbox has few distinct sets of flags
    for day in days:
        table = lake.read_partition("raw_messages", account, day, columns=[*state.RAW.key, *state.RAW.columns])
        overlay = state.stored(lake, state.RAW, account, day) if table.num_rows else {}
        columns = [table.column(name).to_pylist() for name in (*state.RAW.key, *state.RAW.columns)]
        for folder, uidvalidity, uid, flags, deleted_at in zip(*columns):
            if (current := overlay.get((folder, uidvalidity, uid))) is not None:
                flags, deleted_at = current["flags"], current["deleted_at"]
            if deleted_at is None:
                flags = tuple(flags or ())
                if (kept := lasting.get(flags)) is None:
                    kept = lasting[flags] = modseq.lasting_flags(flags)
                index.setdefault((folder, uidvalidity), {})[uid] = StoredMessage(day, kept)
    return index


def flag_days(states: Iterable[modseq.FlagState], stored: dict[int, StoredMessage], window: set[date]) -> set[date]:
    """Days of stored messages whose flags differ from the server's (and, when the server gave
    INTERNALDATE, of in-window messages the lake lacks)."""
    from mail_pipeline.sync.plan import utc_day

    days = set()
    for state in states:
        known = stored.get(state.uid)
        if known is None:
            if state.internaldate is not None and utc_day(state.internaldate) in window:
                days.add(utc_day(state.internaldate))
        elif known.flags != modseq.lasting_flags(state.flags):
            days.add(known.day)
    return days


def gone_days(gone: Iterable[int], stored: dict[int, StoredMessage]) -> set[date]:
    """Days of the stored messages among the UIDs `gone` from the server."""
    return {stored[uid].day for uid in gone if uid in stored}


@dataclass(frozen=True)
class FolderCheck:
    folder: str
    previous_modseq: int | None
    previous_messages: int | None
    status: FolderStatus
    new_uids: int  # UIDs above the previous UIDNEXT
    previous_uidnext: int = 0


def changed_days(session: ImapSession, check: FolderCheck, stored: Callable[[], dict[int, StoredMessage]],
                 window: set[date], reconcile_flags: bool) -> set[date]:
    """Days whose stored messages changed flags or left the folder since the cursor."""
    status = check.status
    by_modseq = status.highestmodseq is not None and check.previous_modseq is not None
    expunged = check.previous_messages is not None and status.messages < check.previous_messages + check.new_uids
    if by_modseq and status.highestmodseq == check.previous_modseq:
        return set()  # nothing in the folder changed: no flag, no expunge
    if not (by_modseq or expunged or reconcile_flags):
        return set()
    session.unselect()  # ENABLE is an authenticated-state command (RFC 5161 3.1)
    qresync = by_modseq and session.enable("QRESYNC")  # before SELECT: VANISHED needs it (RFC 7162 3.2.5)
    session.select(check.folder)
    days: set[date] = set()
    if by_modseq:
        changes = modseq.changed_since(session, check.previous_modseq, qresync)
        # New messages carry a new mod-sequence too; their days come from the new-mail path.
        changed = [state for state in changes.flags if state.uid < check.previous_uidnext]
        days |= flag_days(changed, stored(), window) if changed else set()
        if changes.vanished:
            days |= gone_days(changes.vanished, stored())
        if changes.vanished is not None:
            return days
    if expunged or (reconcile_flags and not by_modseq):
        # SEARCH SINCE/BEFORE is in the server's timezone (RFC 3501 6.4.4): a day either side
        # covers every stored (in-window) message.
        on_server = session.search_between(min(window) - timedelta(days=1), max(window) + timedelta(days=2))
        days |= gone_days(set(stored()) - set(on_server), stored())
        if reconcile_flags and not by_modseq:
            days |= flag_days(modseq.fetch_flags(session, on_server), stored(), set())
    return days
