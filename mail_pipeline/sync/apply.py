"""What one day's stored raw rows become after a sync: flags brought current, messages gone from
the server kept with `deleted_at` or erased (the account's `on_server_delete`), and messages that
moved, were copied or got new UIDs (a UIDVALIDITY reset) matched to a stored copy instead of
being downloaded again. Pure: the caller fetches and writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mail_pipeline.imap.modseq import lasting_flags
from mail_pipeline.imap.records import MessageMeta
from mail_pipeline.sync.plan import FolderPlan

POLICIES = ("keep", "mirror")
# Columns of raw_messages read to decide (everything but the bytes).
# Columns that change without the message changing (storage/state.py keeps them apart).
STATE_COLUMNS = {"flags", "deleted_at", "deleted_reason"}
META_COLUMNS = [
    "folder",
    "uidvalidity",
    "uid",
    "internaldate",
    "flags",
    "size",
    "sha256",
    "message_id",
    "deleted_at",
    "deleted_reason",
]
FOLDER_GONE = "folder_gone"  # raw_messages.deleted_reason of a message whose folder left the server


@dataclass
class DayEdits:
    """Per stored row (in file order) the rows it becomes: [{}] unchanged, [] dropped, or
    overrides of its columns, one dict per output row (a reused body yields a second row)."""

    outputs: list[list[dict[str, Any]]]
    to_fetch: dict[str, list[MessageMeta]]  # folder -> messages whose bodies must be downloaded
    flags_updated: int = 0
    gone: int = 0  # left the server: kept with deleted_at or erased, per policy
    reused: int = 0  # new UIDs whose body was taken from a stored copy
    erased: int = 0  # rows removed for good: gone under mirror, earlier tombstones under mirror, unsynced folders
    folder_gone: int = 0  # of `gone`, those whose whole folder left the server
    unsynced: int = (
        0  # of `erased`, rows of a folder the account no longer syncs (still on the server)
    )
    by_folder: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(out != [{}] for out in self.outputs) or any(self.to_fetch.values())

    @property
    def state_only(self) -> bool:
        """Every row stays, alone, with at most its flags or deleted_at changed: no body to write."""
        return not any(self.to_fetch.values()) and all(
            len(out) == 1 and set(out[0]) <= STATE_COLUMNS for out in self.outputs
        )


def match_key(internaldate: datetime, size: int) -> tuple[Any, ...]:
    return (internaldate, size)


def candidates(
    stored: list[dict[str, Any]], to_fetch: dict[str, list[MessageMeta]]
) -> dict[str, list[int]]:
    """Per folder, the UIDs to fetch that a stored row might hold (same INTERNALDATE and size):
    only their Message-ID is asked for before deciding."""
    keys = {match_key(r["internaldate"], r["size"]) for r in stored if r["message_id"]}
    return {
        folder: [m.uid for m in metas if match_key(m.internaldate, m.size) in keys]
        for folder, metas in to_fetch.items()
    }


def edit_day(
    stored: list[dict[str, Any]],
    plans: Iterable[Any],
    vanished: set[str],
    policy: str,
    now: datetime,
    message_ids: dict[tuple[str, int], str | None] | None = None,
) -> DayEdits:
    """Decide every stored row's fate and what is left to download. `plans` are the day's
    `FolderPlan`s; `vanished`, the folders confirmed gone from the server (their messages go as
    any other deletion, unless they turn up elsewhere: a renamed folder); `message_ids` maps
    (folder, uid) of `candidates` to their Message-ID."""
    if policy not in POLICIES:
        raise ValueError(f"on_server_delete must be one of {POLICIES}, not {policy!r}")
    plans = {p.folder: p for p in plans}
    edits = DayEdits(outputs=[], to_fetch={})
    # edits.outputs, with None for a row that left its folder until reuse decides its fate
    outputs: list[list[dict[str, Any]] | None] = []
    gone: list[int] = []
    for index, row in enumerate(stored):
        outputs.append(_current(row, plans, vanished, policy, edits))
        if outputs[-1] is None:
            gone.append(index)
    _reuse(stored, plans, message_ids or {}, edits, outputs, vanished)
    live = {
        key
        for i, out in enumerate(outputs)
        for entry in out or ()
        if _is_live(stored[i], entry)
        for key in _identity(stored[i])
    }
    for index, row in enumerate(stored):
        current = outputs[index]
        elsewhere = bool(live & set(_identity(row)))
        # a tombstone whose message is back (or moved in)
        if row["deleted_at"] is not None and elsewhere:
            outputs[index] = [o for o in current or () if o]  # _current gave a tombstone a list
        elif index not in gone:
            if current == []:  # a tombstone under mirror, or a folder no longer synced
                edits.erased += 1
                edits.unsynced += row["deleted_at"] is None
            continue
        elif current is not None or elsewhere:  # moved, or another copy is still on the server
            outputs[index] = current or []
        else:
            reason = {"deleted_reason": FOLDER_GONE} if row["folder"] in vanished else {}
            outputs[index] = [{"deleted_at": now, **reason}] if policy == "keep" else []
            edits.gone += 1
            edits.folder_gone += bool(reason)
            edits.erased += policy == "mirror"
    edits.outputs = [out for out in outputs if out is not None]
    if len(edits.outputs) != len(stored):  # every row left undecided above was decided here
        raise RuntimeError(f"{len(stored) - len(edits.outputs)} stored row(s) left undecided")
    return edits


def _is_live(row: dict[str, Any], entry: dict[str, Any]) -> bool:
    return entry.get("deleted_at", row["deleted_at"]) is None


def _current(
    row: dict[str, Any], plans: dict[str, Any], vanished: set[str], policy: str, edits: DayEdits
) -> list[dict[str, Any]] | None:
    """The row brought up to date, or None when it left its folder (decided once reuse is known)."""
    if row["deleted_at"] is not None:
        return [] if policy == "mirror" else [{}]
    if row["folder"] in vanished:
        return None  # its folder left the server: kept or erased per policy, unless it moved (a rename)
    plan = plans.get(row["folder"])
    if plan is None:
        return []  # a folder no longer synced
    meta = plan.present.get(row["uid"]) if row["uidvalidity"] == plan.uidvalidity else None
    if meta is None:
        return None
    if lasting_flags(meta.flags) != lasting_flags(row["flags"] or ()):
        edits.flags_updated += 1
        return [{"flags": list(meta.flags)}]
    return [{}]


def _identity(row: dict[str, Any]) -> list[str]:
    return [row["sha256"]] + ([f"id:{row['message_id']}"] if row["message_id"] else [])


def _reuse(
    stored: list[dict[str, Any]],
    plans: dict[str, FolderPlan],
    message_ids: dict[tuple[str, int], str | None],
    edits: DayEdits,
    outputs: list[list[dict[str, Any]] | None],
    vanished: set[str],
) -> None:
    """New UIDs whose (Message-ID, size, INTERNALDATE) match a stored row take that row's body;
    so do those whose (UIDVALIDITY, UID, size, INTERNALDATE) match a row of a vanished folder:
    a rename that keeps both (Dovecot does), Message-ID or not."""
    sources: dict[tuple[Any, ...], int] = {}
    renamed: dict[tuple[Any, ...], int] = {}
    for index, row in enumerate(stored):
        if row["message_id"]:
            key = (row["message_id"], *match_key(row["internaldate"], row["size"]))
            # Prefer a row that left the server: a move, or a reset's old UID.
            if key not in sources or outputs[index] is None:
                sources[key] = index
        if row["folder"] in vanished and outputs[index] is None:
            renamed[
                (row["uidvalidity"], row["uid"], *match_key(row["internaldate"], row["size"]))
            ] = index
    for folder, plan in plans.items():
        left = []
        for meta in plan.to_fetch:
            source = sources.get(
                (message_ids.get((folder, meta.uid)), *match_key(meta.internaldate, meta.size))
            )
            if source is None:
                source = renamed.pop(
                    (plan.uidvalidity, meta.uid, *match_key(meta.internaldate, meta.size)), None
                )
            if source is None:
                left.append(meta)
                continue
            new = {
                "folder": folder,
                "uidvalidity": plan.uidvalidity,
                "uid": meta.uid,
                "flags": list(meta.flags),
                "deleted_at": None,
                "deleted_reason": None,
            }
            outputs[source] = (outputs[source] or []) + [new]
            edits.reused += 1
        edits.to_fetch[folder] = left
