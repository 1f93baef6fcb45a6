"""email_chunks: each email's search text in pieces sized with the embedding model's own tokenizer."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from mail_pipeline.indexing.chunk import TokenCounter, chunk_email
from mail_pipeline.stages.outcome import PartitionOutcome
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import EMAIL_CHUNKS

EMAIL_COLUMNS = ["email_id", "subject", "from_name", "from_address", "sent_at", "received_at", "search_text", "thread_id",
                 "deleted_at"]


def chunk_rows(email: dict, tokens: TokenCounter, max_tokens: int) -> list[dict]:
    """The email_chunks rows of one emails row."""
    sender = f"{email['from_name']} <{email['from_address']}>" if email["from_name"] else email["from_address"]
    sent_at = email["sent_at"] or email["received_at"]
    pieces = chunk_email(email_id=email["email_id"], subject=email["subject"], sender=sender, sent_at=sent_at,
                         search_text=email["search_text"] or "", tokens=tokens, max_tokens=max_tokens)
    return [{
        "chunk_id": c.chunk_id, "email_id": c.email_id, "ordinal": c.ordinal, "text": c.text,
        "token_count": c.token_count, "text_sha256": c.text_sha256, "thread_id": email["thread_id"],
        "subject": email["subject"], "sender": sender, "sent_at": sent_at, "deleted_at": email["deleted_at"],
    } for c in pieces]


def chunk_day(lake: Lake, account: str, day: date, tokens: TokenCounter, max_tokens: int) -> PartitionOutcome:
    rows, emails, empty = [], 0, 0
    for email in lake.read_partition("emails", account, day, columns=EMAIL_COLUMNS).to_pylist():
        pieces = chunk_rows(email, tokens, max_tokens)
        emails, empty = emails + 1, empty + (not pieces)
        rows += pieces
    written = lake.write_partition("email_chunks", account, day, pa.Table.from_pylist(rows, schema=EMAIL_CHUNKS))
    return PartitionOutcome(account, day, rows=written.rows, summary=(
        f"{written.rows} chunks from {emails} emails; {empty} empty or signature-only emails produced none"),
        figures={"emails": emails, "emails_without_chunks": empty, "bytes": written.bytes})
