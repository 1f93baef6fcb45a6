"""emails: one parsed, clean record per distinct message of the account that day."""

import time
from collections import Counter
from datetime import date

import pyarrow as pa
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from mail_pipeline.defs.assets.raw_messages import raw_messages
from mail_pipeline.defs.metadata import summary_metadata
from mail_pipeline.defs.partitions import locked_partitions, mail_partitions
from mail_pipeline.defs.resources import LakeResource
from mail_pipeline.message import records
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import EMAILS
from mail_pipeline.window import in_window

PARSE_SLICE = 2000  # raw messages parsed at a time, to bound memory on very busy days


def known_threads(lake: Lake, account: str, except_day: date) -> tuple[dict[str, str], dict[str, str]]:
    """From the account's other stored days (the retention window): message id -> thread id, and
    normalized subject -> thread id of its earliest message (for replies without headers)."""
    known: dict[str, str] = {}
    earliest: dict[str, tuple] = {}
    for _account, day in lake.list_partitions("emails", account):
        if day == except_day:
            continue
        rows = lake.read_partition("emails", account, day, columns=["message_id", "thread_id", "subject_normalized", "received_at"])
        for row in rows.to_pylist():
            known[row["message_id"]] = row["thread_id"]
            subject = row["subject_normalized"]
            if subject and (subject not in earliest or row["received_at"] < earliest[subject][0]):
                earliest[subject] = (row["received_at"], row["thread_id"])
    return known, {subject: thread for subject, (_when, thread) in earliest.items()}


def build_day(lake: Lake, account: str, day: date) -> tuple[list[dict], int]:
    raw = lake.read_partition("raw_messages", account, day)
    meta_columns = [c for c in raw.column_names if c != "raw"]
    rows: list[dict] = []
    for start in range(0, raw.num_rows, PARSE_SLICE):
        part = raw.slice(start, PARSE_SLICE)
        metas = part.select(meta_columns).to_pylist()
        parsed = records.parse_all(part.column("raw").to_pylist())
        rows += [records.email_row(p, m) for p, m in zip(parsed, metas)]
    merged, copies = records.merge_copies(rows)
    records.resolve_threads(merged, *known_threads(lake, account, day))
    merged.sort(key=lambda r: (r["received_at"], r["email_id"]))
    return merged, copies


@asset(partitions_def=mail_partitions, backfill_policy=BackfillPolicy.single_run(), deps=[raw_messages], group_name="mail", kinds={"parquet"})
def emails(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    """Parsed emails: one row per distinct message, with clean text, threads and attachments."""
    started = time.monotonic()
    store, settings = lake.lake, get_settings()
    total = copies = bytes_written = 0
    defects: Counter[str] = Counter()
    skipped = []
    for account, days in locked_partitions(context, lake):
        for day in days:
            if not in_window(day, settings.retention_days):
                skipped.append(day.isoformat())
                continue
            rows, merged = build_day(store, account, day)
            written = store.write_partition("emails", account, day, pa.Table.from_pylist(rows, schema=EMAILS))
            total, copies, bytes_written = total + written.rows, copies + merged, bytes_written + written.bytes
            defects.update(d.split(":")[0] for row in rows for d in row["defects"])
    lake.ensure_catalog()
    return MaterializeResult(metadata=summary_metadata(
        rows=total, seconds=time.monotonic() - started,
        summary=f"{total} emails, {copies} duplicate copies merged, {sum(defects.values())} defects"
        + (f"; outside the retention window, nothing stored for {', '.join(skipped)}" if skipped else ""),
        extra={"duplicates_merged": copies, "bytes": bytes_written,
               "defects_by_kind": MetadataValue.json(dict(defects.most_common())),
               "skipped_out_of_window": MetadataValue.json(skipped)},
    ))
