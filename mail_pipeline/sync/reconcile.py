"""Which stored days a folder's flag changes and expunges touch, without fetching a body.

With CONDSTORE the sensor asks only for what changed since the cursor's HIGHESTMODSEQ (RFC 7162),
and with QRESYNC also for the UIDs expunged since. Without them, a MESSAGES count below what the
cursor expects means expunges (then one UID SEARCH finds them), and flags are compared in UID
ranges on the account's own, slower cadence: never a re-scan on every tick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mail_pipeline.imap import modseq
from mail_pipeline.imap.records import FolderStatus
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.storage import state
from mail_pipeline.storage.lake import Lake


@dataclass(frozen=True)
class StoredMessage:
    day: date
    flags: frozenset[str]


class StoredFolder(Mapping[int, StoredMessage]):
    """One (folder, UIDVALIDITY)'s messages still on the server, by UID, kept as the lake's columns:
    a StoredMessage is made only for a UID asked about (a changed flag, an expunge). An object per
    stored row made the sensor's tick 5 times slower at 20,000 messages."""

    def __init__(
        self, table: pa.Table, rows: dict[int, int], overlay: dict[tuple[Any, ...], dict[str, Any]]
    ):
        self._table, self._rows, self._overlay = table, rows, overlay  # rows: UID -> row of `table`

    def __getitem__(self, uid: int) -> StoredMessage:
        return self.lookup([uid])[uid]

    def lookup(self, uids: Iterable[int]) -> dict[int, StoredMessage]:
        """The stored messages among `uids`, read from the columns in one take."""
        found = [uid for uid in uids if uid in self._rows]
        picked = self._table.take(pa.array([self._rows[uid] for uid in found], pa.int64()))
        lasting: dict[
            tuple[Any, ...], frozenset[str]
        ] = {}  # a mailbox has few distinct sets of flags
        messages = {}
        keys = zip(*(picked.column(name).to_pylist() for name in state.RAW.key))
        flags_and_days = zip(picked.column("flags").to_pylist(), picked.column("day").to_pylist())
        for uid, key, (flags, day) in zip(found, keys, flags_and_days):
            if (current := self._overlay.get(key)) is not None:
                flags = current["flags"]
            flags = tuple(flags or ())
            if (kept := lasting.get(flags)) is None:
                kept = lasting[flags] = modseq.lasting_flags(flags)
            messages[uid] = StoredMessage(day, kept)
        return messages

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


# (folder, uidvalidity) -> UID -> what the lake holds of it (messages still on the server only)
StoredIndex = dict[tuple[str, int], StoredFolder]


def read_stored(lake: Lake, account: str, days: Iterable[date]) -> StoredIndex:
    """What the lake's raw_messages hold of the account on `days` (no raw bytes read)."""
    tables: list[pa.Table] = []
    overlay: dict[tuple[Any, ...], dict[str, Any]] = {}
    for day in days:
        table = lake.read_partition(
            "raw_messages", account, day, columns=[*state.RAW.key, *state.RAW.columns]
        )
        if table.num_rows:
            tables.append(table.append_column("day", pa.array([day] * table.num_rows, pa.date32())))
            overlay |= state.stored(lake, state.RAW, account, day)
    if not tables:
        return {}
    table = pa.concat_tables(tables).combine_chunks()
    index: StoredIndex = {}
    for pair in (
        table.select(["folder", "uidvalidity"])
        .group_by(["folder", "uidvalidity"])
        .aggregate([])
        .to_pylist()
    ):
        folder, uidvalidity = pair["folder"], pair["uidvalidity"]
        mask = pc.and_(
            pc.equal(table.column("folder"), folder),
            pc.equal(table.column("uidvalidity"), uidvalidity),
        )
        rows = pc.indices_nonzero(mask)
        at = dict(zip(table.column("uid").take(rows).to_pylist(), rows.to_pylist()))
        # Gone: deleted in the file unless a state brought it back, or deleted by a state.
        states = {
            key[2]: current for key, current in overlay.items() if key[:2] == (folder, uidvalidity)
        }
        deleted = table.column("uid").take(
            pc.indices_nonzero(pc.and_(mask, pc.is_valid(table.column("deleted_at"))))
        )
        gone = {uid for uid in deleted.to_pylist() if uid not in states}
        gone |= {uid for uid, current in states.items() if current["deleted_at"] is not None}
        for uid in gone:
            at.pop(uid, None)
        index[(folder, uidvalidity)] = StoredFolder(table, at, overlay)
    return index


def flag_days(
    states: Iterable[modseq.FlagState], stored: Mapping[int, StoredMessage], window: set[date]
) -> set[date]:
    """Days of stored messages whose flags differ from the server's (and, when the server gave
    INTERNALDATE, of in-window messages the lake lacks)."""
    from mail_pipeline.sync.plan import utc_day

    days, server = set(), list(states)
    found = _lookup(stored, [flag_state.uid for flag_state in server])
    for flag_state in server:
        known = found.get(flag_state.uid)
        if known is None:
            arrived = flag_state.internaldate
            if arrived is not None and utc_day(arrived) in window:
                days.add(utc_day(arrived))
        elif known.flags != modseq.lasting_flags(flag_state.flags):
            days.add(known.day)
    return days


def gone_days(gone: Iterable[int], stored: Mapping[int, StoredMessage]) -> set[date]:
    """Days of the stored messages among the UIDs `gone` from the server."""
    return {message.day for message in _lookup(stored, gone).values()}


def _lookup(stored: Mapping[int, StoredMessage], uids: Iterable[int]) -> dict[int, StoredMessage]:
    """`stored`'s messages among `uids`: in one read of the columns where it is a StoredFolder."""
    if isinstance(stored, StoredFolder):
        return stored.lookup(uids)
    return {uid: stored[uid] for uid in uids if uid in stored}


@dataclass(frozen=True)
class FolderCheck:
    folder: str
    previous_modseq: int | None
    previous_messages: int | None
    status: FolderStatus
    new_uids: int  # UIDs above the previous UIDNEXT
    previous_uidnext: int = 0


def changed_days(
    session: ImapSession,
    check: FolderCheck,
    stored: Callable[[], dict[int, StoredMessage]],
    window: set[date],
    reconcile_flags: bool,
) -> set[date]:
    """Days whose stored messages changed flags or left the folder since the cursor."""
    status = check.status
    by_modseq = status.highestmodseq is not None and check.previous_modseq is not None
    expunged = (
        check.previous_messages is not None
        and status.messages < check.previous_messages + check.new_uids
    )
    if by_modseq and status.highestmodseq == check.previous_modseq:
        return set()  # nothing in the folder changed: no flag, no expunge
    if not (by_modseq or expunged or reconcile_flags):
        return set()
    session.unselect()  # ENABLE is an authenticated-state command (RFC 5161 3.1)
    # before SELECT: VANISHED needs it (RFC 7162 3.2.5)
    qresync = by_modseq and session.enable("QRESYNC")
    session.select(check.folder)
    days: set[date] = set()
    if by_modseq and check.previous_modseq is not None:  # by_modseq says it is not None
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
        on_server = session.search_between(
            min(window) - timedelta(days=1), max(window) + timedelta(days=2)
        )
        days |= gone_days(set(stored()) - set(on_server), stored())
        if reconcile_flags and not by_modseq:
            days |= flag_days(modseq.fetch_flags(session, on_server), stored(), set())
    return days
