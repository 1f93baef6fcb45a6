"""From raw rows to `emails` rows: parse (in parallel when it pays), merge the copies of one
message found in several folders, and resolve thread ids against what is already stored."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

from mail_pipeline.message.parse import ParsedEmail, content_key, email_id, is_reply_subject, parse_message
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


def email_row(parsed: ParsedEmail, raw: Mapping) -> dict:
    """One `emails` row (schema EMAILS) from a parsed message and its raw_messages row."""
    flags = raw["flags"] or []
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
        "seen": _flag(flags, "\\seen"),
        "answered": _flag(flags, "\\answered"),
        "flagged": _flag(flags, "\\flagged"),
        "locations": [{"folder": raw["folder"], "uidvalidity": raw["uidvalidity"], "uid": raw["uid"]}],
        "size": raw["size"],
        "sha256": raw["sha256"],
        "defects": parsed.defects,
        "_thread_input": ThreadInput(
            message_id=parsed.message_id, thread_root=parsed.thread_root, in_reply_to=parsed.in_reply_to,
            references=tuple(parsed.references), subject_normalized=parsed.subject_normalized,
            is_reply=is_reply_subject(parsed.subject),
            sent_at=parsed.sent_at,
        ),
    }


def merge_copies(rows: Iterable[dict]) -> tuple[list[dict], int]:
    """One row per distinct message (`email_id`: Message-ID and content): copies in other folders
    add their location and flags; messages that only share a Message-ID stay apart.
    Returns the rows (in first-seen order) and how many copies were merged."""
    merged: dict[str, dict] = {}
    copies = 0
    for row in rows:
        first = merged.get(row["email_id"])
        if first is None:
            merged[row["email_id"]] = row
            continue
        copies += 1
        first["locations"] = first["locations"] + row["locations"]
        for flag in ("seen", "answered", "flagged"):
            first[flag] = first[flag] or row[flag]
        first["received_at"] = min(first["received_at"], row["received_at"])
    for row in merged.values():
        row["locations"].sort(key=lambda loc: (loc["folder"], loc["uid"]))
    return list(merged.values()), copies


def resolve_threads(rows: list[dict], known: Mapping[str, str], known_subjects: Mapping[str, str] | None = None) -> None:
    """Replace provisional thread roots with thread ids that span days and folders."""
    thread_ids = resolve_thread_ids([row["_thread_input"] for row in rows], known, known_subjects)
    for row in rows:
        row["thread_id"] = thread_ids[row["message_id"]]
        del row["_thread_input"]
