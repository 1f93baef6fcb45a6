"""From raw rows to `emails` rows: parse (in parallel when it pays), merge the copies of one
message found in several folders, and resolve thread ids against what is already stored."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

from mail_pipeline.message.parse import (
    ParsedEmail,
    content_key,
    email_id,
    is_reply_subject,
    parse_message,
)
from mail_pipeline.message.threads import ThreadInput, resolve_thread_ids

# Below this many messages a process pool costs more to start than it saves.
PARALLEL_THRESHOLD = 200


def _parse(raw: bytes) -> ParsedEmail:
    return parse_message(raw)


def parse_all(raws: list[bytes], workers: int | None = None) -> Iterator[ParsedEmail]:
    """Parse in order; on a process pool of `workers` (default: every core) for big batches."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(raws) < PARALLEL_THRESHOLD:
        yield from map(_parse, raws)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_parse, raws, chunksize=32)


def _flag(flags: Iterable[str], name: str) -> bool:
    return any(f.lower() == name for f in flags)


def keywords(flags: Iterable[str]) -> list[str]:
    """The flags that are keywords (labels such as `$Work`), not system flags (RFC 3501 2.3.2)."""
    return sorted({f for f in flags if not f.startswith("\\")})


def email_row(parsed: ParsedEmail, raw: Mapping[str, Any]) -> dict[str, Any]:
    """One `emails` row (schema EMAILS) from a parsed message and its raw_messages row."""
    return {
        "email_id": email_id(parsed.message_id, content_key(parsed)),
        "message_id": parsed.message_id,
        "message_id_synthetic": parsed.message_id_synthetic,
        "in_reply_to": parsed.in_reply_to,
        "references": parsed.references,
        "thread_id": parsed.thread_root,  # provisional: resolve_threads() replaces it
        "subject": parsed.subject,
        "subject_normalized": parsed.subject_normalized,
        "from_name": parsed.from_name,
        "from_address": parsed.from_address,
        "to": [asdict(a) for a in parsed.to],
        "cc": [asdict(a) for a in parsed.cc],
        "bcc": [asdict(a) for a in parsed.bcc],
        "reply_to": [asdict(a) for a in parsed.reply_to],
        "list_id": parsed.list_id,
        "sent_at": parsed.sent_at,
        "received_at": raw["internaldate"],
        "body_source": parsed.body_source,
        "body_text": parsed.body_text,
        "search_text": parsed.search_text,
        "attachments": [asdict(a) for a in parsed.attachments],
        **copy_state(raw),
        "locations": [
            {"folder": raw["folder"], "uidvalidity": raw["uidvalidity"], "uid": raw["uid"]}
        ],
        "size": raw["size"],
        "sha256": raw["sha256"],
        "defects": parsed.defects,
        "_thread_input": ThreadInput(
            message_id=parsed.message_id,
            thread_root=parsed.thread_root,
            in_reply_to=parsed.in_reply_to,
            references=tuple(parsed.references),
            subject_normalized=parsed.subject_normalized,
            is_reply=is_reply_subject(parsed.subject),
            sent_at=parsed.sent_at,
        ),
    }


COPY_COLUMNS = (
    "seen",
    "answered",
    "flagged",
    "keywords",
    "locations",
    "received_at",
    "size",
    "sha256",
    "deleted_at",
    "deleted_reason",
)


def copy_state(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The emails state columns one copy's flags and deleted_at make (an email of one copy has them)."""
    flags = raw["flags"] or []
    return {
        "seen": _flag(flags, "\\seen"),
        "answered": _flag(flags, "\\answered"),
        "flagged": _flag(flags, "\\flagged"),
        "keywords": keywords(flags),
        "deleted_at": raw.get("deleted_at"),
        "deleted_reason": raw.get("deleted_reason"),
    }


def reused_row(stored: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """An `emails` row for a raw message already parsed into `stored` (same bytes): the parse and
    thread are reused, what belongs to this copy (flags, location, dates) comes from `raw`."""
    return {
        **stored,
        **copy_state(raw),
        "locations": [
            {"folder": raw["folder"], "uidvalidity": raw["uidvalidity"], "uid": raw["uid"]}
        ],
        "received_at": raw["internaldate"],
        "size": raw["size"],
        "sha256": raw["sha256"],
    }


def merge_copies(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One row per distinct message (`email_id`: Message-ID and content); messages that only
    share a Message-ID stay apart. Its locations and flags are those of the copies still on the
    server (of every copy when none is: then `deleted_at` is when the last one went).
    Returns the rows (in first-seen order) and how many copies were merged."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["email_id"], []).append(row)
    merged = []
    for group in groups.values():
        first = group[0]
        current = [row for row in group if row["deleted_at"] is None] or group
        first["locations"] = sorted(
            (loc for row in current for loc in row["locations"]),
            key=lambda loc: (loc["folder"], loc["uid"]),
        )
        for flag in ("seen", "answered", "flagged"):
            first[flag] = any(row[flag] for row in current)
        first["keywords"] = sorted({k for row in current for k in row["keywords"]})
        first["deleted_at"] = (
            None
            if current is not group or first["deleted_at"] is None
            else max(r["deleted_at"] for r in group)
        )
        last_gone = (
            max(group, key=lambda r: r["deleted_at"]) if first["deleted_at"] is not None else {}
        )
        first["deleted_reason"] = last_gone.get("deleted_reason")
        first["received_at"] = min(row["received_at"] for row in group)
        merged.append(first)
    return merged, sum(len(group) - 1 for group in groups.values())


def resolve_threads(
    rows: list[dict[str, Any]],
    known: Mapping[str, str],
    known_subjects: Mapping[str, str] | None = None,
) -> None:
    """Replace provisional thread roots with thread ids that span days and folders."""
    thread_ids = resolve_thread_ids([row["_thread_input"] for row in rows], known, known_subjects)
    for row in rows:
        row["thread_id"] = thread_ids[row["message_id"]]
        del row["_thread_input"]
