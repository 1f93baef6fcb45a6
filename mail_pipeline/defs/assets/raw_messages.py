"""raw_messages: every message of the synced folders, as RFC 822 bytes, per account x UTC day."""


import itertools
import time
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from mail_pipeline.defs.metadata import summary_metadata
from mail_pipeline.defs.partitions import locked_partitions, mail_partitions
from mail_pipeline.defs.resources import ImapResource, LakeResource
from mail_pipeline import imap
from mail_pipeline.imap import errors as imap_errors
from mail_pipeline.sync import plan as sync
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.lake import Lake, rows_to_batches
from mail_pipeline.storage.schemas import RAW_MESSAGES, SYNC_LOG
from mail_pipeline.window import in_window


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


def sync_day(session: imap.ImapSession, lake: Lake, account: str, day: date, plans: list[sync.FolderPlan],
             stored_rows: list[dict], vanished: Iterable[str] = ()) -> list[sync.FolderOutcome]:
    """Fetch what the plans miss and rewrite the day's file with it. Stored rows stay when their
    folder is planned with the same UIDVALIDITY, or is a configured folder that vanished from
    the server (`vanished`: this copy may be all that is left of them)."""
    settings = get_settings()
    outcomes = [sync.FolderOutcome(p.folder, p.uidvalidity, p.highest_uid, kept=p.already_stored) for p in plans]
    vanished = set(vanished)
    valid = {r["folder"]: r["uidvalidity"] for r in stored_rows if r["folder"] in vanished}
    valid |= {p.folder: p.uidvalidity for p in plans}
    stale = sum(1 for r in stored_rows if valid.get(r["folder"]) != r["uidvalidity"])
    if not any(p.to_fetch for p in plans) and not stale:
        return outcomes  # nothing new: leave the file as it is
    new_rows = itertools.chain.from_iterable(
        sync.raw_rows(session, plan, outcome, max_messages=settings.imap_batch_messages, max_bytes=settings.imap_batch_bytes)
        for plan, outcome in zip(plans, outcomes)
    )
    lake.write_partition("raw_messages", account, day,
                         itertools.chain(kept_batches(lake, account, day, valid), rows_to_batches(new_rows, RAW_MESSAGES, 64)))
    for outcome in outcomes:
        outcome.dropped_stale = sum(1 for r in stored_rows if r["folder"] == outcome.folder and r["uidvalidity"] != outcome.uidvalidity)
    return outcomes


def log_outcomes(lake: Lake, account: str, run_id: str, day: date, outcomes: Iterable[sync.FolderOutcome]) -> None:
    rows = [{
        "run_id": run_id, "folder": o.folder, "partition_day": day, "started_at": o.started_at,
        "finished_at": o.finished_at or datetime.now(timezone.utc), "uidvalidity": o.uidvalidity,
        "highest_uid": o.highest_uid, "messages_fetched": o.fetched, "bytes_fetched": o.bytes,
        "status": o.status, "error": o.error,
    } for o in outcomes]
    if rows:
        lake.append("sync_log", account, datetime.now(timezone.utc).date(), pa.Table.from_pylist(rows, schema=SYNC_LOG))


def add_totals(totals: dict, outcomes: list[sync.FolderOutcome]) -> None:
    for o in outcomes:
        totals["new"] += o.fetched
        totals["kept"] += o.kept
        totals["bytes"] += o.bytes
        totals["stale"] += o.dropped_stale
        totals["folders"][o.folder] = totals["folders"].get(o.folder, 0) + o.fetched + o.kept


def vanished_outcomes(context, account: str, folders: list[str]) -> list[sync.FolderOutcome]:
    """A configured folder the server no longer has fails alone: the others sync, its stored
    messages stay, and sync_status shows it until the folder is back or the account changed."""
    outcomes = []
    for folder in folders:
        error = (f"folder {folder!r} does not exist on the server (deleted or renamed?); its stored messages "
                 "are kept. Re-create it, or re-add the account without it")
        context.log.warning(f"raw_messages: account {account!r}: {error}")
        outcomes.append(sync.FolderOutcome(folder=folder, uidvalidity=0, highest_uid=0, status="missing", error=error,
                                           finished_at=datetime.now(timezone.utc)))
    return outcomes


def sync_account(context, lake: Lake, imap_resource: ImapResource, account_slug: str, days: list[date]) -> dict:
    settings = get_settings()
    account = imap_resource.account(account_slug)
    totals = {"new": 0, "kept": 0, "bytes": 0, "stale": 0, "skipped_days": [], "folders": {}, "vanished": []}
    wanted = [d for d in days if in_window(d, settings.retention_days)]
    totals["skipped_days"] = [d.isoformat() for d in days if d not in wanted]
    if not wanted:
        return totals
    day = wanted[0]
    try:
        with imap_resource.session(account) as session:
            folders, vanished = imap.split_folders(session.list_folders(), account.folders)
            if vanished:
                log_outcomes(lake, account_slug, context.run_id, day, vanished_outcomes(context, account_slug, vanished))
                totals["vanished"] = vanished
            stored_rows = {d: stored_uids(lake, account_slug, d) for d in wanted}
            stored = {d: sync.stored_index(rows) for d, rows in stored_rows.items()}
            plans = {folder: sync.plan_folder(session, folder, wanted, {d: s.get(folder, {}) for d, s in stored.items()})
                     for folder in folders}
            for day in wanted:
                outcomes = sync_day(session, lake, account_slug, day, [plans[f][day] for f in folders], stored_rows[day],
                                    vanished)
                log_outcomes(lake, account_slug, context.run_id, day, outcomes)
                add_totals(totals, outcomes)
    except imap_errors.ImapError as error:
        failed = sync.FolderOutcome(folder="*", uidvalidity=0, highest_uid=0, status=error.kind, error=str(error))
        log_outcomes(lake, account_slug, context.run_id, day, [failed])
        raise
    return totals


@asset(partitions_def=mail_partitions, backfill_policy=BackfillPolicy.single_run(), group_name="mail", kinds={"imap", "parquet"})
def raw_messages(context: AssetExecutionContext, lake: LakeResource, imap: ImapResource) -> MaterializeResult:
    """Raw RFC 822 messages of the synced folders whose INTERNALDATE falls on the UTC day."""
    started = time.monotonic()
    store = lake.lake
    lake.ensure_catalog()
    totals = {"new": 0, "kept": 0, "bytes": 0, "stale": 0, "skipped_days": [], "folders": {}, "vanished": []}
    for account, days in locked_partitions(context, lake):
        result = sync_account(context, store, imap, account, days)
        for key in ("new", "kept", "bytes", "stale"):
            totals[key] += result[key]
        totals["skipped_days"] += result["skipped_days"]
        totals["vanished"] += [f"{account}/{folder}" for folder in result["vanished"]]
        for folder, count in result["folders"].items():
            totals["folders"][folder] = totals["folders"].get(folder, 0) + count
    rows = totals["new"] + totals["kept"]
    return MaterializeResult(metadata=summary_metadata(
        rows=rows, seconds=time.monotonic() - started, extra={
            "messages_new": totals["new"], "messages_already_stored": totals["kept"],
            "stale_rows_dropped": totals["stale"], "bytes_fetched": totals["bytes"],
            "per_folder": MetadataValue.json(totals["folders"]),
            "skipped_out_of_window": MetadataValue.json(totals["skipped_days"]),
            "folders_missing_on_server": MetadataValue.json(totals["vanished"]),
        },
        summary=f"{totals['new']} new, {totals['kept']} already stored, {totals['bytes'] / 1e6:.1f} MB fetched"
        + (f"; days outside the retention window stored nothing: {', '.join(totals['skipped_days'])}" if totals["skipped_days"] else "")
        + (f"; **configured folders missing on the server** (stored messages kept): {', '.join(totals['vanished'])}"
           if totals["vanished"] else ""),
    ))
