"""emails: one parsed, clean record per distinct message of the account that day."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pyarrow as pa

from mail_pipeline.extract.messages import extract_texts
from mail_pipeline.extract.pool import ExtractionPool
from mail_pipeline.message import records
from mail_pipeline.stages.outcome import PartitionOutcome
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import EMAILS

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


def build_day(lake: Lake, account: str, day: date, pool: ExtractionPool) -> tuple[list[dict], int]:
    """The day's emails rows from its raw messages (attachment text read on `pool`, copies merged,
    threads resolved) and how many copies merged."""
    raw = lake.read_partition("raw_messages", account, day)
    meta_columns = [c for c in raw.column_names if c != "raw"]
    rows: list[dict] = []
    for start in range(0, raw.num_rows, PARSE_SLICE):
        part = raw.slice(start, PARSE_SLICE)
        metas = part.select(meta_columns).to_pylist()
        raws = part.column("raw").to_pylist()
        parsed = list(records.parse_all(raws))
        texts = extract_texts(zip(parsed, raws), pool)
        rows += [t.add_to(records.email_row(p, m)) for p, m, t in zip(parsed, metas, texts)]
    return distinct_emails(rows, *known_threads(lake, account, day))


def distinct_emails(rows: list[dict], known: dict[str, str], known_subjects: dict[str, str]) -> tuple[list[dict], int]:
    """One row per distinct message (copies merged), threaded, in arrival order; and how many copies merged."""
    merged, copies = records.merge_copies(rows)
    records.resolve_threads(merged, known, known_subjects)
    merged.sort(key=lambda r: (r["received_at"], r["email_id"]))
    return merged, copies


def parse_day(lake: Lake, account: str, day: date, pool: ExtractionPool) -> PartitionOutcome:
    rows, copies = build_day(lake, account, day, pool)
    written = lake.write_partition("emails", account, day, pa.Table.from_pylist(rows, schema=EMAILS))
    defects = Counter(d.split(":")[0] for row in rows for d in row["defects"])
    texts = sum(len(row["attachment_texts"]) for row in rows)
    return PartitionOutcome(account, day, rows=written.rows, summary=(
        f"{written.rows} emails, {copies} duplicate copies merged, {texts} attachment texts, "
        f"{sum(defects.values())} defects"), figures={
        "duplicates_merged": copies, "bytes": written.bytes, "attachment_texts": texts,
        "defects_by_kind": dict(defects.most_common()),
        "preview": [f"{r['from_address']}: {r['subject']}" for r in rows[:5]],
    })
