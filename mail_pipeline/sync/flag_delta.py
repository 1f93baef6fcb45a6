"""A run over stored days whose flags were all reconciled at a mod-sequence M (sync/flag_cursor.py),
on a server with QRESYNC: one `UID FETCH 1:* (FLAGS INTERNALDATE) (CHANGEDSINCE M VANISHED)` per
folder names everything that moved since (RFC 7162 3.1.4.1, 3.2.6). When that is flags and expunges
of stored messages alone, each day's state file is brought current from the rows they name; the
day's other rows stay in Arrow and never become Python objects (planning every message of 30 days
cost 30 times the changes it found: bench, flags).

Anything else returns None and the run plans every message as before: new mail on the run's days,
a message gone while another copy of it stays in the day (a move or copy: edit_day decides), rows
under another UIDVALIDITY or live rows of an unsynced or gone folder, `mirror` with something to
erase, a folder refused or without mod-sequences.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mail_pipeline.imap import modseq
from mail_pipeline.imap.errors import ImapFolderError, ImapProtocolError
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.storage import state
from mail_pipeline.storage.lake import Lake
from mail_pipeline.sync.apply import DayEdits
from mail_pipeline.sync.flag_cursor import FlagCursor
from mail_pipeline.sync.plan import FolderOutcome, utc_day

COLUMNS = ["folder", "uidvalidity", "uid", "flags", "deleted_at", "sha256", "message_id"]


@dataclass(frozen=True)
class FolderDelta:
    folder: str
    uidvalidity: int
    highest_uid: int
    highestmodseq: int
    flags: dict[int, tuple[str, ...]]  # UID -> its flags now, of the messages changed since M
    days: dict[int, date]  # UID -> its UTC day (INTERNALDATE), of the same messages
    vanished: set[int]  # expunged since M


def read(
    session: ImapSession, folders: list[str], days: list[date], cursor: FlagCursor
) -> list[FolderDelta] | None:
    """Each folder's changes since the mod-sequence all of `days` were reconciled at; None when a
    folder has no such mark, or the server cannot say what vanished."""
    if (
        not folders
        or b"QRESYNC" not in session.capabilities
        or not all(cursor.covers(f, days) for f in folders)
    ):
        return None
    session.unselect()  # ENABLE is an authenticated-state command (RFC 5161 3.1)
    if not session.enable("QRESYNC"):
        return None
    deltas = []
    for folder in folders:
        try:
            status = session.select(folder)
        except ImapFolderError:
            return (
                None  # gone or refused since LIST: the full plan says which, and syncs the others
            )
        since = cursor.since(folder, status.uidvalidity, days)
        if since is None or status.highestmodseq is None:
            return None
        changes = modseq.changed_since(session, since, qresync=True)
        if changes.vanished is None or any(s.internaldate is None for s in changes.flags):
            return None
        deltas.append(
            FolderDelta(
                folder,
                status.uidvalidity,
                max(status.uidnext - 1, 0),
                status.highestmodseq,
                {s.uid: s.flags for s in changes.flags},
                {s.uid: utc_day(_internaldate(s)) for s in changes.flags},
                changes.vanished,
            )
        )
    return deltas


def _internaldate(flag_state: modseq.FlagState) -> datetime:
    # asked for with FLAGS (`changed_since`); utc_day raised AttributeError on None before
    if flag_state.internaldate is None:
        raise ImapProtocolError(f"FETCH response for UID {flag_state.uid} has no INTERNALDATE")
    return flag_state.internaldate


@dataclass
class DayDelta:
    states: dict[
        tuple[Any, ...], dict[str, Any]
    ]  # the day's whole overlay, as state.write takes it
    changed: bool
    flags_updated: int
    gone: int
    kept: dict[str, int]  # folder -> its messages of the day still on the server


def apply_day(
    lake: Lake, account: str, day: date, deltas: list[FolderDelta], policy: str, now: datetime
) -> DayDelta | None:
    """The day's overlay with `deltas` applied, or None when the day needs the full plan."""
    table = lake.read_partition("raw_messages", account, day, columns=COLUMNS)
    overlay = state.stored(lake, state.RAW, account, day)
    rows = _named_rows(table, overlay, deltas, day)
    if rows is None:
        return None
    current = {state.RAW.key_of(row): row | overlay.get(state.RAW.key_of(row), {}) for row in rows}
    if policy == "mirror" and (
        any(r["deleted_at"] is not None for r in current.values())
        or pc.any(pc.is_valid(table.column("deleted_at"))).as_py()
    ):
        return None  # a tombstone to erase
    for delta in deltas:
        stored = {key[2] for key in current if key[0] == delta.folder}
        if any(d == day and uid not in stored for uid, d in delta.days.items()):
            return None  # new mail on this day: its body to fetch, perhaps a stored copy to reuse
    by_folder = {d.folder: d for d in deltas}
    result = DayDelta(
        states=dict(overlay),
        changed=False,
        flags_updated=0,
        gone=0,
        kept={d.folder: 0 for d in deltas} | _live_counts(table, rows, overlay),
    )
    for key, row in current.items():
        delta = by_folder[key[0]]
        if row["deleted_at"] is not None:
            continue  # a tombstone stays as it is (keep)
        if key[2] in delta.vanished:
            if policy == "mirror" or _has_copy(table, row):
                return (
                    None  # erased, or dropped for the copy that stays: the bodies file is rewritten
                )
            result.states[key] = {"flags": row["flags"], "deleted_at": now, "deleted_reason": None}
            result.gone, result.kept[key[0]] = result.gone + 1, result.kept[key[0]] - 1
        elif (flags := delta.flags.get(key[2])) is not None and modseq.lasting_flags(
            flags
        ) != modseq.lasting_flags(row["flags"] or ()):
            result.states[key] = {"flags": list(flags), "deleted_at": None, "deleted_reason": None}
            result.flags_updated += 1
    result.changed = bool(result.gone or result.flags_updated)
    return result


def _named_rows(
    table: pa.Table,
    overlay: dict[tuple[Any, ...], dict[str, Any]],
    deltas: list[FolderDelta],
    day: date,
) -> list[dict[str, Any]] | None:
    """The day's rows a delta names (changed on this day, vanished) or the overlay holds, as
    dicts; None when the day holds rows of another UIDVALIDITY or of a folder not synced."""
    named, belonging = [], 0
    for delta in deltas:
        here = pc.equal(table.column("folder"), delta.folder)
        if pc.any(
            pc.and_(here, pc.not_equal(table.column("uidvalidity"), delta.uidvalidity))
        ).as_py():
            return None  # rows of an earlier UIDVALIDITY: edit_day decides what they become
        belonging += pc.sum(here).as_py() or 0
        uids = {uid for uid, d in delta.days.items() if d == day} | delta.vanished
        uids |= {key[2] for key in overlay if key[0] == delta.folder}
        named.append(
            pc.and_(
                here, pc.is_in(table.column("uid"), value_set=pa.array(sorted(uids), pa.int64()))
            )
        )
    if belonging != table.num_rows and not _tombstones_only(
        table, overlay, [d.folder for d in deltas]
    ):
        return None  # live rows of a folder no longer synced, or gone from the server
    rows: list[dict[str, Any]] = table.filter(functools.reduce(pc.or_, named)).to_pylist()
    return rows


def _tombstones_only(
    table: pa.Table, overlay: dict[tuple[Any, ...], dict[str, Any]], folders: list[str]
) -> bool:
    """Whether the day's rows outside `folders` are all marked deleted (a gone folder's, kept): they
    stay as they are, so the day needs no full plan for them."""
    elsewhere = pc.invert(
        pc.is_in(table.column("folder"), value_set=pa.array(folders, pa.string()))
    )
    live = table.filter(pc.and_(elsewhere, pc.is_null(table.column("deleted_at")))).select(
        list(state.RAW.key)
    )
    return all(
        (overlay.get(state.RAW.key_of(row)) or {}).get("deleted_at") is not None
        for row in live.to_pylist()
    )


def _live_counts(
    table: pa.Table, rows: list[dict[str, Any]], overlay: dict[tuple[Any, ...], dict[str, Any]]
) -> dict[str, int]:
    """Per folder, the rows not marked deleted, in the file or by the overlay (`rows`: its keys' rows)."""
    live = table.filter(pc.is_null(table.column("deleted_at")))
    counts = {
        e["folder"]: e["uid_count"]
        for e in live.group_by("folder").aggregate([("uid", "count")]).to_pylist()
    }
    for row in rows:
        if (
            row["deleted_at"] is None
            and overlay.get(state.RAW.key_of(row), {}).get("deleted_at") is not None
        ):
            counts[row["folder"]] -= 1
    return counts


def _has_copy(table: pa.Table, row: dict[str, Any]) -> bool:
    """Another row of the day with the same bytes or Message-ID (which stays decides edit_day)."""
    same = pc.equal(table.column("sha256"), row["sha256"])
    if row["message_id"]:
        same = pc.or_(same, pc.equal(table.column("message_id"), row["message_id"]))
    return (pc.sum(same).as_py() or 0) > 1


def outcomes(
    deltas: list[FolderDelta], day_delta: DayDelta
) -> tuple[list[FolderOutcome], DayEdits]:
    """What the run reports of a day reconciled from `deltas`, as sync_day would."""
    finished = datetime.now(UTC)
    folders = [
        FolderOutcome(
            d.folder,
            d.uidvalidity,
            d.highest_uid,
            kept=day_delta.kept.get(d.folder, 0),
            highestmodseq=d.highestmodseq,
            finished_at=finished,
        )
        for d in deltas
    ]
    return folders, DayEdits(
        outputs=[], to_fetch={}, flags_updated=day_delta.flags_updated, gone=day_delta.gone
    )
