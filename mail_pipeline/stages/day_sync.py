"""One day of raw_messages brought in line with the server: what is new fetched (bodies matched to
a stored copy reused), flags and deletions recorded beside the day's file or the file rewritten."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from mail_pipeline import imap
from mail_pipeline.imap import modseq
from mail_pipeline.storage import integrity, state
from mail_pipeline.storage.lake import Lake, rows_to_batches
from mail_pipeline.storage.schemas import RAW_MESSAGES
from mail_pipeline.sync import apply, plan


def edited_batches(
    batches: Iterable[pa.RecordBatch], outputs: list[list[dict[str, Any]]]
) -> Iterator[pa.RecordBatch]:
    """The stored batches with `apply.DayEdits.outputs` applied: rows dropped, repeated, and
    columns (flags, deleted_at, a new location) overridden; the raw bytes are never touched."""
    offset = 0
    for batch in batches:
        take, overrides = [], []
        for index in range(batch.num_rows):
            for entry in outputs[offset + index]:
                take.append(index)
                overrides.append(entry)
        offset += batch.num_rows
        if not take:
            continue
        batch = batch.take(pa.array(take, pa.int64()))
        columns = {name for entry in overrides for name in entry}
        arrays = [
            pa.array(
                [
                    entry.get(name, value)
                    for entry, value in zip(overrides, batch.column(name).to_pylist())
                ],
                type=RAW_MESSAGES.field(name).type,
            )
            if name in columns
            else batch.column(name)
            for name in batch.schema.names
        ]
        yield pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def stored_meta(lake: Lake, account: str, day: date) -> list[dict[str, Any]]:
    """The day's raw_messages rows without their bytes, in file order, with their current state."""
    return state.read(lake, state.RAW, account, day, apply.META_COLUMNS)


def write_state(
    lake: Lake,
    account: str,
    day: date,
    stored_rows: list[dict[str, Any]],
    outputs: list[list[dict[str, Any]]],
) -> None:
    """Record the rows' new flags and deleted_at beside the day's file, which stays as it is."""
    states = state.stored(lake, state.RAW, account, day)
    for row, (entry,) in zip(stored_rows, outputs):
        if entry:
            states[state.RAW.key_of(row)] = {c: entry.get(c, row[c]) for c in state.RAW.columns}
    state.write(lake, state.RAW, account, day, states)


def folded(
    stored_rows: list[dict[str, Any]],
    outputs: list[list[dict[str, Any]]],
    overridden: set[tuple[Any, ...]],
) -> list[list[dict[str, Any]]]:
    """`outputs` carrying the current state of the rows the overlay overrides, for a rewrite."""
    return [
        [{c: row[c] for c in state.RAW.columns} | entry for entry in out]
        if state.RAW.key_of(row) in overridden
        else out
        for row, out in zip(stored_rows, outputs)
    ]


def matching_ids(
    session: imap.ImapSession, wanted: dict[str, list[int]]
) -> dict[tuple[str, int], str | None]:
    """Message-IDs of new UIDs that may be stored already (a move, a copy, a UIDVALIDITY reset)."""
    found: dict[tuple[str, int], str | None] = {}
    for folder, uids in wanted.items():
        if uids:
            session.select(folder)
            found |= {(folder, uid): mid for uid, mid in modseq.message_ids(session, uids).items()}
    return found


@dataclass
class DaySync:
    outcomes: list[plan.FolderOutcome]
    edits: apply.DayEdits
    path: str = "plan"  # "plan": every message compared; "changes": from CHANGEDSINCE/VANISHED alone (delta_run)


def sync_day(
    session: imap.ImapSession,
    lake: Lake,
    account: str,
    day: date,
    plans: list[plan.FolderPlan],
    stored_rows: list[dict[str, Any]],
    fetch: plan.Fetch,
    vanished: Iterable[str] = (),
    policy: str = "keep",
) -> DaySync:
    """Bring the day's file in line with the server: fetch what is new (bodies matched to a stored
    copy are not downloaded again), update flags, and keep or erase what left the server (`policy`).
    Stored rows of a configured folder that vanished from the server stay as they are."""
    outcomes = [
        plan.FolderOutcome(
            p.folder,
            p.uidvalidity,
            p.highest_uid,
            kept=p.already_stored,
            highestmodseq=p.highestmodseq,
        )
        for p in plans
    ]
    ids = matching_ids(
        session, apply.candidates(stored_rows, {p.folder: p.to_fetch for p in plans})
    )
    edits = apply.edit_day(stored_rows, plans, set(vanished), policy, datetime.now(UTC), ids)
    for p, outcome in zip(plans, outcomes):
        outcome.reused = len(p.to_fetch) - len(edits.to_fetch.get(p.folder, []))
        outcome.dropped_stale = sum(
            1 for r in stored_rows if r["folder"] == p.folder and r["uidvalidity"] != p.uidvalidity
        )
    if not edits.changed or edits.state_only:
        # The file stays as it is: check it reads back as written (the plan read a few small
        # columns), so a damaged one fails here, naming itself, before anything is written beside it.
        integrity.check_raw(lake, account, day)
    if not edits.changed:
        return DaySync(outcomes, edits)
    if edits.state_only:
        # Flags or deletions only: a few bytes beside the file; its bodies are neither read nor
        # rewritten (emails reuses every parse, so nothing downstream reads them either).
        write_state(lake, account, day, stored_rows, edits.outputs)
        return DaySync(outcomes, edits)
    new_rows = itertools.chain.from_iterable(
        plan.raw_rows(fetch, replace(p, to_fetch=edits.to_fetch.get(p.folder, [])), outcome)
        for p, outcome in zip(plans, outcomes)
    )
    overridden = set(state.stored(lake, state.RAW, account, day))
    path = lake.partition_file("raw_messages", account, day)
    # checked as it is copied
    stored = integrity.hashed(path, lake.iter_batches("raw_messages", account, day))
    kept = edited_batches(stored, folded(stored_rows, edits.outputs, overridden))
    lake.write_partition(
        "raw_messages",
        account,
        day,
        itertools.chain(kept, rows_to_batches(new_rows, RAW_MESSAGES, 64)),
    )
    state.clear(lake, state.RAW, account, day)  # the file just written holds the current state
    return DaySync(outcomes, edits)
