"""emails: one parsed, clean record per distinct message of the account that day."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mail_pipeline.extract.messages import extract_texts
from mail_pipeline.extract.pool import ExtractionPool
from mail_pipeline.message import records
from mail_pipeline.stages.outcome import PartitionOutcome, noting_rebuilt
from mail_pipeline.storage import integrity, state
from mail_pipeline.storage.lake import WRITE_ID, Lake, LakeReadError, footer_value
from mail_pipeline.storage.schemas import EMAILS

log = logging.getLogger(__name__)

PARSE_SLICE = 2000  # raw messages parsed at a time, to bound memory on very busy days
# What raw messages decide of an email besides its state: equal means its file still holds (changed_states).
IDENTITY = ["email_id", "sha256", "locations", "received_at", "size"]
RAW_META = [
    "folder",
    "uidvalidity",
    "uid",
    "internaldate",
    "flags",
    "size",
    "sha256",
    "deleted_at",
    "deleted_reason",
]
# In an emails file's footer: the lake.WRITE_ID of the raw_messages file it was built from.
SOURCE = b"mail_pipeline.raw_write_id"


def known_threads(
    lake: Lake, account: str, except_day: date
) -> tuple[dict[str, str], dict[str, str]]:
    """From the account's other stored days (the retention window): message id -> thread id, and
    normalized subject -> thread id of its earliest message (for replies without headers)."""
    known: dict[str, str] = {}
    earliest: dict[str, tuple[Any, ...]] = {}
    for _account, day in lake.list_partitions("emails", account):
        if day == except_day:
            continue
        rows = lake.read_partition(
            "emails",
            account,
            day,
            columns=["message_id", "thread_id", "subject_normalized", "received_at"],
        )
        for row in rows.to_pylist():
            known[row["message_id"]] = row["thread_id"]
            subject = row["subject_normalized"]
            if subject and (subject not in earliest or row["received_at"] < earliest[subject][0]):
                earliest[subject] = (row["received_at"], row["thread_id"])
    return known, {subject: thread for subject, (_when, thread) in earliest.items()}


def previous_emails(lake: Lake, account: str, day: date) -> dict[str, dict[str, Any]]:
    """The day's emails as last written, by the sha256 of their raw bytes. Only a cache of earlier
    parses: a damaged file is parsed again from raw_messages, never fatal."""
    try:
        return {
            row["sha256"]: row for row in lake.read_partition("emails", account, day).to_pylist()
        }
    except (LakeReadError, pa.ArrowException, ValueError) as error:
        log.warning(
            "emails %s/%s: the stored emails cannot be reused (%s); parsing the day again",
            account,
            day,
            error,
        )
        return {}


def changed_states(
    lake: Lake, account: str, day: date, metas: list[dict[str, Any]]
) -> tuple[dict[tuple[Any, ...], dict[str, Any]], int] | None:
    """When the day's raw messages still make exactly the stored emails (the same bytes in the same
    places: only flags or deleted_at moved), each email's state where it differs from the file's,
    and how many emails the day has; None when the emails file must be built again. Reads no text."""
    try:
        stored = lake.read_partition(
            "emails", account, day, columns=[*IDENTITY, *state.EMAILS.columns]
        ).to_pylist()
    except (LakeReadError, pa.ArrowException, ValueError):
        return None  # build_day says why, and parses again
    by_sha = {row["sha256"]: row for row in stored}
    if not stored or any(meta["sha256"] not in by_sha for meta in metas):
        return None
    merged, _copies = records.merge_copies(
        [records.reused_row(by_sha[meta["sha256"]], meta) for meta in metas]
    )
    if _identities(merged) != _identities(stored):
        return None
    before = {row["email_id"]: row for row in stored}
    states = {
        (row["email_id"],): current
        for row in merged
        if (current := {c: row[c] for c in state.EMAILS.columns})
        != {c: before[row["email_id"]][c] for c in current}
    }
    return states, len(stored)


def overlay_states(
    lake: Lake, account: str, day: date, raw_file: pq.FileMetaData | None
) -> tuple[dict[tuple[Any, ...], dict[str, Any]], int] | None:
    """`changed_states` without reading the day's rows, when the emails file was built from the
    raw_messages file still in place (`raw_file`, its footer: only the raw state file has moved
    since) and every message that state file names is the one copy of an email: then its state is
    that copy's. None when either does not hold."""
    source = footer_value(raw_file, WRITE_ID)
    if source is None or footer_value(lake.file_metadata("emails", account, day), SOURCE) != source:
        return None
    try:
        stored = lake.read_partition(
            "emails", account, day, columns=["email_id", "locations", *state.EMAILS.columns]
        )
    except (LakeReadError, pa.ArrowException, ValueError):
        return None  # parsed again from raw_messages (build_day says why)
    locations = stored.column("locations").combine_chunks()
    lengths = pc.list_value_length(locations)
    if raw_file is None or pc.sum(lengths).as_py() != raw_file.num_rows:
        return None  # a copy is in no email's locations (one went while another stayed): merge_copies decides
    raw_states = state.stored(lake, state.RAW, account, day)
    if not raw_states:
        return {}, stored.num_rows
    owner = _owners(locations, raw_states)
    if len(owner) != len(raw_states) or any(lengths[p].as_py() != 1 for p in owner.values()):
        return None
    rows = stored.take(pa.array(list(owner.values()), pa.int64())).to_pylist()
    states = {
        (row["email_id"],): current
        for key, row in zip(owner, rows)
        if (current := records.copy_state(raw_states[key])) != {c: row[c] for c in current}
    }
    return states, stored.num_rows


def _owners(
    locations: pa.ListArray, keys: Collection[tuple[Any, ...]]
) -> dict[tuple[Any, ...], int]:
    """Which email (row) lists each of the raw `keys` among its locations."""
    flat, parents = pc.list_flatten(locations), pc.list_parent_indices(locations)
    uids = pa.array(sorted({key[2] for key in keys}), pa.int64())
    named = pc.indices_nonzero(pc.is_in(pc.struct_field(flat, "uid"), value_set=uids))
    owner = {}
    for location, parent in zip(flat.take(named).to_pylist(), parents.take(named).to_pylist()):
        if (key := (location["folder"], location["uidvalidity"], location["uid"])) in keys:
            owner[key] = parent
    return owner


def _identities(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(tuple(str(row[c]) for c in IDENTITY) for row in rows)


def build_day(
    lake: Lake,
    account: str,
    day: date,
    pool: ExtractionPool,
    metas: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The day's emails rows from its raw messages (attachment text read on `pool`, copies merged,
    threads resolved) and how many copies merged.

    A raw message whose bytes (sha256) an email of the day was parsed from is not parsed again:
    a run for flag changes or expunges re-parses nothing."""
    metas = state.read(lake, state.RAW, account, day, RAW_META) if metas is None else metas
    parsed_before = previous_emails(lake, account, day)
    rows: list[dict[str, Any]] = []
    fresh = []
    for index, meta in enumerate(metas):
        before = parsed_before.get(meta["sha256"])
        if before is None:
            fresh.append(index)
        else:
            rows.append(records.reused_row(before, meta))
    if fresh:
        raw = lake.read_partition("raw_messages", account, day, columns=["raw"]).column("raw")
        for start in range(0, len(fresh), PARSE_SLICE):
            part = fresh[start : start + PARSE_SLICE]
            raws = raw.take(part).to_pylist()
            parsed = list(records.parse_all(raws))
            texts = extract_texts(zip(parsed, raws), pool)
            rows += [
                t.add_to(records.email_row(p, metas[i])) for p, i, t in zip(parsed, part, texts)
            ]
    # Reused rows keep their thread: the other days are read only to thread freshly parsed ones.
    known, subjects = known_threads(lake, account, day) if fresh else ({}, {})
    known |= {row["message_id"]: row["thread_id"] for row in rows if "_thread_input" not in row}
    return distinct_emails(rows, known, subjects)


def distinct_emails(
    rows: list[dict[str, Any]], known: dict[str, str], known_subjects: dict[str, str]
) -> tuple[list[dict[str, Any]], int]:
    """One row per distinct message (copies merged), threaded, in arrival order; and how many copies merged."""
    merged, copies = records.merge_copies(rows)
    records.resolve_threads(
        [row for row in merged if "_thread_input" in row], known, known_subjects
    )
    for row in merged:
        row.pop("_thread_input", None)
    merged.sort(key=lambda r: (r["received_at"], r["email_id"]))
    return merged, copies


def parse_day(lake: Lake, account: str, day: date, pool: ExtractionPool) -> PartitionOutcome:
    """The day's emails from its raw messages; damaged emails and state files are rebuilt, not read."""
    rebuilt = integrity.rebuild_damaged(lake, ["emails", state.EMAILS.table], account, day)
    return noting_rebuilt(_parse_day(lake, account, day, pool), rebuilt)


def _parse_day(lake: Lake, account: str, day: date, pool: ExtractionPool) -> PartitionOutcome:
    # before its rows: the emails file names it
    raw_file = lake.file_metadata("raw_messages", account, day)
    metas = None
    if (unchanged := overlay_states(lake, account, day, raw_file)) is None:
        metas = state.read(lake, state.RAW, account, day, RAW_META)
        unchanged = changed_states(lake, account, day, metas)
    if unchanged is not None:
        states, count = unchanged
        state_bytes = state.write(lake, state.EMAILS, account, day, states)
        return PartitionOutcome(
            account,
            day,
            rows=count,
            summary=(
                f"emails unchanged but for flags or deleted_at: {len(states)} differ from the stored file, "
                "kept beside it"
            ),
            figures={"states_changed": len(states), "bytes": state_bytes},
        )
    rows, copies = build_day(lake, account, day, pool, metas)
    source = footer_value(raw_file, WRITE_ID)
    written = lake.write_partition(
        "emails",
        account,
        day,
        pa.Table.from_pylist(rows, schema=EMAILS),
        footer={SOURCE: source} if source else None,
    )
    state.clear(lake, state.EMAILS, account, day)  # the file just written holds the current state
    defects = Counter(d.split(":")[0] for row in rows for d in row["defects"])
    texts = sum(len(row["attachment_texts"]) for row in rows)
    return PartitionOutcome(
        account,
        day,
        rows=written.rows,
        summary=(
            f"{written.rows} emails, {copies} duplicate copies merged, {texts} attachment texts, "
            f"{sum(defects.values())} defects"
        ),
        figures={
            "duplicates_merged": copies,
            "bytes": written.bytes,
            "attachment_texts": texts,
            "defects_by_kind": dict(defects.most_common()),
            "preview": [f"{r['from_address']}: {r['subject']}" for r in rows[:5]],
        },
    )
