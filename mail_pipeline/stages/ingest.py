"""raw_messages: fetch what the lake lacks of the synced folders, one file per account x UTC day:
a run plans every folder once for all its days (or reads what changed since the flags were last
reconciled), then syncs each day (day_sync.py) and records what it did (sync_report.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from mail_pipeline import imap
from mail_pipeline.imap.errors import ImapError
from mail_pipeline.imap.records import plan_batches
from mail_pipeline.stages.day_sync import DaySync, stored_meta, sync_day
from mail_pipeline.stages.outcome import PartitionOutcome, noting_rebuilt
from mail_pipeline.stages.sync_report import append_log, day_outcome, log_rows
from mail_pipeline.storage import integrity, state
from mail_pipeline.storage.lake import Lake
from mail_pipeline.sync import flag_delta, gone_folders, plan
from mail_pipeline.sync.fetch_pool import FetchPool
from mail_pipeline.sync.flag_cursor import FlagCursor

DAY_THREADS = 4  # a flag reconcile's days read and written side by side (delta_run)


@dataclass(frozen=True)
class FetchLimits:
    max_messages: int = 200
    max_bytes: int = 32 * 1024 * 1024
    connections: int = 4  # per account per run: one plans, the others fetch (sync/fetch_pool.py)
    depth: int = 2  # FETCH commands in flight per connection


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
