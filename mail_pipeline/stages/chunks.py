"""email_chunks: each email's search text, and each of its attachments' text, in pieces sized
with the embedding model's own tokenizer."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pyarrow as pa

from mail_pipeline.indexing.chunk import TokenCounter, chunk_email
from mail_pipeline.stages.outcome import PartitionOutcome, noting_rebuilt
from mail_pipeline.storage import integrity, objects, state
from mail_pipeline.storage.lake import Lake, WriteResult
from mail_pipeline.storage.schemas import EMAIL_CHUNKS

EMAIL_COLUMNS = [
    "email_id",
    "subject",
    "from_name",
    "from_address",
    "sent_at",
    "received_at",
    "search_text",
    "thread_id",
    "attachment_texts",
    "deleted_at",
]


def source_sha256(email: dict[str, Any], max_tokens: int, chunker: str) -> str:
    """What an email's chunks are cut from, hashed: equal means its stored chunks still hold."""
    parts = (
        chunker,
        str(max_tokens),
        email["email_id"],
        email["subject"] or "",
        email["from_name"] or "",
        email["from_address"] or "",
        str(email["sent_at"] or email["received_at"]),
        email["search_text"] or "",
        *(f"{t['name']}\x01{t['text']}" for t in email.get("attachment_texts") or []),
    )
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def chunk_rows(
    email: dict[str, Any], tokens: TokenCounter, max_tokens: int, chunker: str = ""
) -> list[dict[str, Any]]:
    """The email_chunks rows of one emails row."""
    sender = (
        f"{email['from_name']} <{email['from_address']}>"
        if email["from_name"]
        else email["from_address"]
    )
    sent_at = email["sent_at"] or email["received_at"]
    pieces = chunk_email(
        email_id=email["email_id"],
        subject=email["subject"],
        sender=sender,
        sent_at=sent_at,
        search_text=email["search_text"] or "",
        tokens=tokens,
        max_tokens=max_tokens,
        attachments=[(t["name"], t["text"]) for t in email.get("attachment_texts") or []],
    )
    source = source_sha256(email, max_tokens, chunker)
    return [
        {
            "chunk_id": c.chunk_id,
            "email_id": c.email_id,
            "ordinal": c.ordinal,
            "text": c.text,
            "token_count": c.token_count,
            "text_sha256": c.text_sha256,
            "thread_id": email["thread_id"],
            "subject": email["subject"],
            "sender": sender,
            "sent_at": sent_at,
            "attachment": c.attachment,
            "deleted_at": email["deleted_at"],
            "source_sha256": source,
        }
        for c in pieces
    ]


def stored_chunks(
    lake: Lake, account: str, day: date
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The day's chunk rows in file order, and by email."""
    rows = lake.read_partition("email_chunks", account, day).to_pylist()
    by_email: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_email.setdefault(row["email_id"], []).append(row)
    return rows, by_email


def chunk_day(
    lake: Lake, account: str, day: date, tokens: TokenCounter, max_tokens: int, chunker: str = ""
) -> PartitionOutcome:
    """The day's chunks; an email whose text, headers and chunker are unchanged keeps its stored
    chunks (a run for flag changes re-tokenizes nothing), with its current thread and deleted_at.
    `chunker` names the tokenizer (the embedding model). A damaged chunks file is rebuilt, not read."""
    rebuilt = integrity.rebuild_damaged(lake, ["email_chunks"], account, day)
    rows, emails, empty, reused = [], 0, 0, 0
    stored, before = stored_chunks(lake, account, day)
    for email in state.read(lake, state.EMAILS, account, day, EMAIL_COLUMNS):
        old = before.get(email["email_id"], [])
        if old and old[0]["source_sha256"] == source_sha256(email, max_tokens, chunker):
            pieces = [
                {**c, "thread_id": email["thread_id"], "deleted_at": email["deleted_at"]}
                for c in old
            ]
            reused += 1
        else:
            pieces = chunk_rows(email, tokens, max_tokens, chunker)
        emails, empty = emails + 1, empty + (not pieces)
        rows += pieces
    path = lake.partition_file("email_chunks", account, day)
    if rows == stored and path.exists():
        # A run for flag changes: the chunks hold no flags, so the file stays as it is.
        written = WriteResult(rows=len(rows), bytes=objects.size(path), path=path)
    else:
        written = lake.write_partition(
            "email_chunks", account, day, pa.Table.from_pylist(rows, schema=EMAIL_CHUNKS)
        )
    return noting_rebuilt(
        PartitionOutcome(
            account,
            day,
            rows=written.rows,
            summary=(
                f"{written.rows} chunks from {emails} emails ({reused} unchanged, not chunked again); "
                f"{empty} empty or signature-only emails produced none"
            ),
            figures={
                "emails": emails,
                "emails_without_chunks": empty,
                "emails_chunks_reused": reused,
                "bytes": written.bytes,
            },
        ),
        rebuilt,
    )
