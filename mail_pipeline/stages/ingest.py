"""raw_messages: fetch what the lake lacks of the synced folders, one file per account x UTC day."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from mail_pipeline import imap
from mail_pipeline.imap import modseq
from mail_pipeline.imap.errors import ImapError
from mail_pipeline.imap.records import plan_batches
from mail_pipeline.stages.outcome import PartitionOutcome, noting_rebuilt
from mail_pipeline.storage import integrity, state
from mail_pipeline.storage.lake import Lake, rows_to_batches
from mail_pipeline.storage.schemas import RAW_MESSAGES, SYNC_LOG
from mail_pipeline.sync import apply, flag_delta, gone_folders, plan
from mail_pipeline.sync.fetch_pool import FetchPool
from mail_pipeline.sync.flag_cursor import FlagCursor

DAY_THREADS = 4  # a flag reconcile's days read and written side by side (delta_run)


@dataclass(frozen=True)
class FetchLimits:
    max_messages: int = 200
    max_bytes: int = 32 * 1024 * 1024
    connections: int = 4  # per account per run: one plans, the others fetch (sync/fetch_pool.py)
    depth: int = 2  # FETCH commands in flight per connection


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


def fetch_pool(
    open_session: Callable[[], AbstractContextManager[imap.ImapSession]], limits: FetchLimits
) -> FetchPool:
    """The run's extra fetching connections (none when `limits` allow one connection)."""
    return FetchPool(
        open_session,
        workers=limits.connections - 1,
        depth=limits.depth,
        max_messages=limits.max_messages,
        max_bytes=limits.max_bytes,
        readahead_bytes=2 * limits.max_bytes,
    )


def over_pool(days: list[date], limits: FetchLimits) -> bool:
    """Whether a run fetches over the pool from the start: a range of days, more than one connection."""
    return len(days) > 1 and limits.connections > 1


def fetch_for(
    pool: FetchPool, session: imap.ImapSession, plans: list[plan.FolderPlan], limits: FetchLimits
) -> plan.Fetch:
    """How a run of one day fetches `plans` (its order): over the pool when they take more than
    one batch and `limits` allow more than one connection, else on the run's own session."""
    batches = sum(
        1
        for p in plans
        for _ in plan_batches(
            p.to_fetch, max_messages=limits.max_messages, max_bytes=limits.max_bytes
        )
    )
    if limits.connections < 2 or batches < 2:
        return plan.sequential(
            session,
            max_messages=limits.max_messages,
            max_bytes=limits.max_bytes,
            depth=limits.depth,
        )
    pool.announce([p for p in plans if p.to_fetch])
    return pool.messages


def announcer(
    pool: FetchPool, folders: list[str], days: list[date]
) -> Callable[[str, dict[date, plan.FolderPlan]], None]:
    """Hands a folder's plans (of some of `days`) to the pool as soon as they are made, in their
    places among the others' (the days' order, then the folders'): fetching starts while the run
    still plans."""

    def planned(folder: str, by_day: dict[date, plan.FolderPlan]) -> None:
        wanted = [
            (index, by_day[day])
            for index, day in enumerate(days)
            if day in by_day and by_day[day].to_fetch
        ]
        pool.announce(
            [p for _, p in wanted], [(index, folders.index(folder)) for index, _ in wanted]
        )

    return planned


# folder -> (UIDVALIDITY, HIGHESTMODSEQ) the days it synced whole are now current at.
Marks = dict[str, tuple[int, "int | None"]]


@dataclass
class Run:
    """How a run syncs its days: each day's outcome as it is written, and what it learned on the way."""

    days: Iterator[tuple[date, DaySync]]
    marks: Marks
    vanished: list[str]


def remember_flags(cursor: FlagCursor, marks: Marks, synced: dict[str, list[date]]) -> None:
    """The days each folder synced whole now hold its flags as of the plan's EXAMINE (read after it)."""
    for folder, days in synced.items():
        cursor.record(folder, *marks[folder], days)
    cursor.save()


def planned_run(
    session: imap.ImapSession,
    pool: FetchPool,
    lake: Lake,
    account: str,
    folders: list[str],
    vanished: list[str],
    days: list[date],
    cursor: FlagCursor,
    limits: FetchLimits,
    policy: str,
    listed: set[str] | None = None,
) -> Run:
    """Every folder planned once for all of `days`, then each day's file rewritten with what it lacks.
    `listed`, for an account syncing all folders: the names LIST showed, so that a stored folder
    it lacks is confirmed gone (or synced, if a LIST of its own finds it after all)."""
    ranged = over_pool(days, limits)
    stored_rows = {d: stored_meta(lake, account, d) for d in days}
    if listed is not None:
        back, gone = gone_folders.confirm(
            session,
            gone_folders.unlisted(itertools.chain.from_iterable(stored_rows.values()), listed),
        )
        folders, vanished = folders + back, vanished + gone
    stored = {d: plan.stored_index(rows) for d, rows in stored_rows.items()}
    plans, gone = plan.plan_folders(  # gone: deleted since the LIST (confirmed by another)
        session,
        folders,
        days,
        stored,
        announcer(pool, folders, days) if ranged else None,
        known=plan.known_metas(itertools.chain.from_iterable(stored_rows.values())),
        since=lambda folder, uidvalidity: cursor.since(folder, uidvalidity, days),
    )
    folders, vanished = [f for f in folders if f in plans], vanished + gone
    fetch = (
        pool.messages
        if ranged
        else fetch_for(pool, session, [plans[f][d] for d in days for f in folders], limits)
    )
    if ranged and not any(stored_rows.values()):
        # Nothing stored to match new bodies against: the pool fetches everything, and
        # this connection's LOGOUT round trip passes while it does, not after the last day.
        session.close()
    marks = {
        f: (first.uidvalidity, first.highestmodseq)
        for f, by_day in plans.items()
        for first in itertools.islice(by_day.values(), 1)
    }
    synced = (
        (
            day,
            sync_day(
                session,
                lake,
                account,
                day,
                [plans[f][day] for f in folders],
                stored_rows[day],
                fetch,
                vanished,
                policy,
            ),
        )
        for day in days
    )
    return Run(synced, marks, vanished)


def delta_run(
    session: imap.ImapSession,
    lake: Lake,
    account: str,
    folders: list[str],
    days: list[date],
    cursor: FlagCursor,
    policy: str,
) -> Run | None:
    """The days brought current from what changed since their flags were reconciled
    (sync/flag_delta.py); None when a day needs the full plan (then nothing was written)."""
    deltas = flag_delta.read(session, folders, days, cursor)
    if deltas is None:
        return None
    now = datetime.now(UTC)
    # Days apart: Parquet reads and writes release the GIL, so they overlap on a few threads.
    with ThreadPoolExecutor(DAY_THREADS) as threads:
        applied = dict(
            zip(
                days,
                threads.map(
                    lambda d: flag_delta.apply_day(lake, account, d, deltas, policy, now), days
                ),
            )
        )
        done = {day: delta for day, delta in applied.items() if delta is not None}
        if len(done) < len(applied):
            session.unselect()  # as after LIST: the full plan starts from there
            return None

        def write(day: date) -> None:
            integrity.check_raw(lake, account, day)  # as sync_day does for a file it keeps
            if done[day].changed:
                state.write(lake, state.RAW, account, day, done[day].states)

        list(threads.map(write, days))  # raises the first failure
    synced = (
        (day, DaySync(*flag_delta.outcomes(deltas, done[day]), path="changes")) for day in days
    )
    return Run(synced, {d.folder: (d.uidvalidity, d.highestmodseq) for d in deltas}, [])


def log_rows(
    run_id: str, day: date, outcomes: Iterable[plan.FolderOutcome]
) -> list[dict[str, Any]]:
    """sync_log rows of one day's folder outcomes."""
    return [
        {
            "run_id": run_id,
            "folder": o.folder,
            "partition_day": day,
            "started_at": o.started_at,
            "finished_at": o.finished_at or datetime.now(UTC),
            "uidvalidity": o.uidvalidity,
            "highest_uid": o.highest_uid,
            "messages_fetched": o.fetched,
            "bytes_fetched": o.bytes,
            "status": o.status,
            "error": o.error,
            "highestmodseq": o.highestmodseq,
            # A successful sync of a day compared every one of its messages' flags with the server.
            "flags_reconciled_at": o.finished_at or datetime.now(UTC) if o.status == "ok" else None,
        }
        for o in outcomes
    ]


def append_log(lake: Lake, account: str, rows: list[dict[str, Any]]) -> None:
    """One sync_log file for a whole run: a file per day cost a tenth of a flags-only run."""
    if rows:
        lake.append(
            "sync_log",
            account,
            datetime.now(UTC).date(),
            pa.Table.from_pylist(rows, schema=SYNC_LOG),
        )


def day_outcome(account: str, day: date, synced: DaySync, vanished: list[str]) -> PartitionOutcome:
    outcomes, edits = synced.outcomes, synced.edits
    new, kept = sum(o.fetched for o in outcomes), sum(o.kept for o in outcomes)
    fetched_bytes, stale = sum(o.bytes for o in outcomes), sum(o.dropped_stale for o in outcomes)
    summary = (
        f"{new} new, {kept} already stored, {fetched_bytes / 1e6:.1f} MB fetched; {edits.flags_updated} flag "
        f"changes, {edits.gone} gone from the server ({edits.folder_gone} with their folder), "
        f"{edits.erased} erased, {edits.reused} bodies reused"
    )
    if edits.unsynced:
        summary += f"; {edits.unsynced} of folders no longer synced dropped (counted in erased)"
    not_returned = {o.folder: o.missing_uids for o in outcomes if o.missing_uids}
    if not_returned:
        count = sum(map(len, not_returned.values()))
        summary += f"; **{count} requested message(s) not returned by the server** (not stored; asked again next run)"
    if vanished:
        summary += f"; **folders gone from the server**: {', '.join(vanished)}"
    return PartitionOutcome(
        account,
        day,
        rows=new + kept,
        summary=summary,
        figures={
            "messages_new": new,
            "messages_already_stored": kept,
            "stale_rows_dropped": stale,
            "bytes_fetched": fetched_bytes,
            "per_folder": {o.folder: o.fetched + o.kept for o in outcomes},
            "flags_updated": edits.flags_updated,
            "gone_from_server": edits.gone,
            "erased": edits.erased,
            "folder_gone": edits.folder_gone,
            "unsynced_dropped": edits.unsynced,
            "bodies_reused": edits.reused,
            "sync_path": synced.path,
            "folders_missing_on_server": [f"{account}/{folder}" for folder in vanished],
            "uids_not_returned": not_returned,
        },
    )


def rebuilt_states(lake: Lake, account: str, days: list[date]) -> dict[date, list[str]]:
    """Set aside the days' damaged state files before the plan reads them, and forget the flag cursor,
    so the run takes every message's flags from the server again: a line per day saying so. (Raw files
    are checked as each day is synced: sync_day, delta_run.)"""
    notes = {day: integrity.rebuild_damaged(lake, [state.RAW.table], account, day) for day in days}
    if any(notes.values()):
        FlagCursor(lake, account).forget()
    return notes


def ingest(
    account: str,
    wanted_folders: list[str],
    days: list[date],
    *,
    open_session: Callable[[], AbstractContextManager[imap.ImapSession]],
    lake: Lake,
    run_id: str,
    limits: FetchLimits = FetchLimits(),
    on_server_delete: str = "keep",
) -> list[PartitionOutcome]:
    """Sync the account's folders for `days` (in the window): from the changes since their flags
    were reconciled where the server can say them, else each folder planned once for all of them
    and each day's file rewritten with what it lacks."""
    if not days:
        return []
    notes = rebuilt_states(lake, account, days)
    results: list[PartitionOutcome] = []
    logged: list[dict[str, Any]] = []
    whole: dict[str, list[date]] = {}
    day = days[0]
    try:
        # A range of days fetches over the pool; a backfill of days not stored yet signs the pool
        # in as soon as the run's own connection has (bad credentials: one refused sign-in, not
        # one per connection), a range already stored (a flag reconcile) only if it turns out to
        # need bodies. A day's run uses it when it has more than one batch.
        ranged = over_pool(days, limits)
        stored = [lake.partition_file("raw_messages", account, d).exists() for d in days]
        with fetch_pool(open_session, limits) as pool, open_session() as session:
            if ranged and not all(stored):
                pool.open()  # while this connection lists and plans
            available = session.list_folders()
            folders, vanished = imap.split_folders(available, wanted_folders)
            back, vanished = gone_folders.confirm(session, vanished)
            folders += back
            listed = set(imap.selectable(available)) if tuple(wanted_folders) == ("*",) else None
            pool.ahead(folders[0] if folders else None)
            cursor = FlagCursor(lake, account)
            run = (
                delta_run(session, lake, account, folders, days, cursor, on_server_delete)
                if all(stored) and not vanished
                else None
            )
            if run is None:
                run = planned_run(
                    session,
                    pool,
                    lake,
                    account,
                    folders,
                    vanished,
                    days,
                    cursor,
                    limits,
                    on_server_delete,
                    listed,
                )
            if run.vanished:
                logged += log_rows(
                    run_id, day, gone_folders.outcomes(account, run.vanished, on_server_delete)
                )
            for day, synced in run.days:
                logged += log_rows(run_id, day, synced.outcomes)
                results.append(
                    noting_rebuilt(day_outcome(account, day, synced, run.vanished), notes[day])
                )
                for outcome in synced.outcomes:
                    if outcome.status == "ok":
                        whole.setdefault(outcome.folder, []).append(day)
            pool.close()  # its connections sign out while this one does and the run records what it did
            remember_flags(cursor, run.marks, whole)
            append_log(lake, account, logged)
            logged = []
    except ImapError as error:
        failed = plan.FolderOutcome(
            folder="*", uidvalidity=0, highest_uid=0, status=error.kind, error=str(error)
        )
        logged += log_rows(run_id, day, [failed])
        raise
    finally:
        append_log(lake, account, logged)
    return results
