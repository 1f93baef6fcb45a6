"""What an ingest run records: its sync_log rows (one file per run) and each partition's outcome
(the summary and figures Dagster shows as the partition's metadata)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from mail_pipeline.stages.day_sync import DaySync
from mail_pipeline.stages.outcome import PartitionOutcome
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import SYNC_LOG
from mail_pipeline.sync import plan


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
