"""raw_messages: fetch what the lake lacks of the synced folders, one file per account x UTC day."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from mail_pipeline import imap
from mail_pipeline.imap.errors import ImapError
from mail_pipeline.stages.outcome import PartitionOutcome
from mail_pipeline.storage.lake import Lake, rows_to_batches
from mail_pipeline.storage.schemas import RAW_MESSAGES, SYNC_LOG
from mail_pipeline.sync import plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchLimits:
    max_messages: int = 200
    max_bytes: int = 32 * 1024 * 1024


def kept_batches(lake: Lake, account: str, day: date, valid: dict[str, int]) -> Iterator[pa.RecordBatch]:
    """Stored rows whose folder is still synced with the same UIDVALIDITY (others are void)."""
    for batch in lake.iter_batches("raw_messages", account, day):
        folders, validities = batch.column("folder"), batch.column("uidvalidity")
        mask = pc.is_in(
            pc.binary_join_element_wise(folders, pc.cast(validities, pa.string()), "\x00"),
            value_set=pa.array([f"{f}\x00{v}" for f, v in valid.items()]),
        )
        yield batch.filter(mask)


def stored_uids(lake: Lake, account: str, day: date) -> list[dict]:
    return lake.read_partition("raw_messages", account, day, columns=["folder", "uidvalidity", "uid"]).to_pylist()


def sync_day(session: imap.ImapSession, lake: Lake, account: str, day: date, plans: list[plan.FolderPlan],
             stored_rows: list[dict], limits: FetchLimits, vanished: Iterable[str] = ()) -> list[plan.FolderOutcome]:
    """Fetch what the plans miss and rewrite the day's file with it. Stored rows stay when their
    folder is planned with the same UIDVALIDITY, or is a configured folder that vanished from
    the server (`vanished`: this copy may be all that is left of them)."""
    outcomes = [plan.FolderOutcome(p.folder, p.uidvalidity, p.highest_uid, kept=p.already_stored) for p in plans]
    vanished = set(vanished)
    valid = {r["folder"]: r["uidvalidity"] for r in stored_rows if r["folder"] in vanished}
    valid |= {p.folder: p.uidvalidity for p in plans}
    stale = sum(1 for r in stored_rows if valid.get(r["folder"]) != r["uidvalidity"])
    if not any(p.to_fetch for p in plans) and not stale:
        return outcomes  # nothing new: leave the file as it is
    new_rows = itertools.chain.from_iterable(
        plan.raw_rows(session, p, outcome, max_messages=limits.max_messages, max_bytes=limits.max_bytes)
        for p, outcome in zip(plans, outcomes)
    )
    lake.write_partition("raw_messages", account, day,
                         itertools.chain(kept_batches(lake, account, day, valid), rows_to_batches(new_rows, RAW_MESSAGES, 64)))
    for outcome in outcomes:
        outcome.dropped_stale = sum(1 for r in stored_rows if r["folder"] == outcome.folder and r["uidvalidity"] != outcome.uidvalidity)
    return outcomes


def log_outcomes(lake: Lake, account: str, run_id: str, day: date, outcomes: Iterable[plan.FolderOutcome]) -> None:
    rows = [{
        "run_id": run_id, "folder": o.folder, "partition_day": day, "started_at": o.started_at,
        "finished_at": o.finished_at or datetime.now(timezone.utc), "uidvalidity": o.uidvalidity,
        "highest_uid": o.highest_uid, "messages_fetched": o.fetched, "bytes_fetched": o.bytes,
        "status": o.status, "error": o.error,
    } for o in outcomes]
    if rows:
        lake.append("sync_log", account, datetime.now(timezone.utc).date(), pa.Table.from_pylist(rows, schema=SYNC_LOG))


def vanished_outcomes(account: str, folders: list[str]) -> list[plan.FolderOutcome]:
    """A configured folder the server no longer has fails alone: the others sync, its stored
    messages stay, and sync_status shows it until the folder is back or the account changed."""
    outcomes = []
    for folder in folders:
        error = (f"folder {folder!r} does not exist on the server (deleted or renamed?); its stored messages "
                 "are kept. Re-create it, or re-add the account without it")
        log.warning("raw_messages: account %r: %s", account, error)
        outcomes.append(plan.FolderOutcome(folder=folder, uidvalidity=0, highest_uid=0, status="missing", error=error,
                                           finished_at=datetime.now(timezone.utc)))
    return outcomes


def day_outcome(account: str, day: date, outcomes: list[plan.FolderOutcome], vanished: list[str]) -> PartitionOutcome:
    new, kept = sum(o.fetched for o in outcomes), sum(o.kept for o in outcomes)
    fetched_bytes, stale = sum(o.bytes for o in outcomes), sum(o.dropped_stale for o in outcomes)
    summary = f"{new} new, {kept} already stored, {fetched_bytes / 1e6:.1f} MB fetched"
    if vanished:
        summary += f"; **configured folders missing on the server** (stored messages kept): {', '.join(vanished)}"
    return PartitionOutcome(account, day, rows=new + kept, summary=summary, figures={
        "messages_new": new, "messages_already_stored": kept, "stale_rows_dropped": stale,
        "bytes_fetched": fetched_bytes, "per_folder": {o.folder: o.fetched + o.kept for o in outcomes},
        "folders_missing_on_server": [f"{account}/{folder}" for folder in vanished],
    })


def ingest(account: str, wanted_folders: list[str], days: list[date], *,
           open_session: Callable[[], AbstractContextManager[imap.ImapSession]], lake: Lake, run_id: str,
           limits: FetchLimits = FetchLimits()) -> list[PartitionOutcome]:
    """Sync the account's folders for `days` (in the window): each folder is planned once for all
    of them, then each day's file is rewritten with what it lacks."""
    if not days:
        return []
    results, day = [], days[0]
    try:
        with open_session() as session:
            folders, vanished = imap.split_folders(session.list_folders(), wanted_folders)
            if vanished:
                log_outcomes(lake, account, run_id, day, vanished_outcomes(account, vanished))
            stored_rows = {d: stored_uids(lake, account, d) for d in days}
            stored = {d: plan.stored_index(rows) for d, rows in stored_rows.items()}
            plans = {folder: plan.plan_folder(session, folder, days, {d: s.get(folder, {}) for d, s in stored.items()})
                     for folder in folders}
            for day in days:
                outcomes = sync_day(session, lake, account, day, [plans[f][day] for f in folders], stored_rows[day],
                                    limits, vanished)
                log_outcomes(lake, account, run_id, day, outcomes)
                results.append(day_outcome(account, day, outcomes, vanished))
    except ImapError as error:
        failed = plan.FolderOutcome(folder="*", uidvalidity=0, highest_uid=0, status=error.kind, error=str(error))
        log_outcomes(lake, account, run_id, day, [failed])
        raise
    return results
