"""Arrow schemas of every lake table, declared once: writers, views and tests use these.

Partition columns (`account`, `day`) are not stored inside the Parquet files: they live in the
hive path (`account=<slug>/day=<YYYY-MM-DD>`), and DuckDB adds them back with typed hive
partitioning. `Lake.read_partition` adds them back too.
"""

from __future__ import annotations

import pyarrow as pa

UTC_TS = pa.timestamp("us", tz="UTC")

ADDRESS = pa.struct([("name", pa.string()), ("address", pa.string())])
ATTACHMENT = pa.struct(
    [
        ("filename", pa.string()),
        ("content_type", pa.string()),
        ("size", pa.int64()),
        ("sha256", pa.string()),
        ("inline", pa.bool_()),
    ]
)
# Text read from an attachment (mail_pipeline/extract): `index` is its position in `attachments`.
ATTACHMENT_TEXT = pa.struct(
    [("index", pa.int32()), ("name", pa.string()), ("text", pa.large_string())]
)
LOCATION = pa.struct([("folder", pa.string()), ("uidvalidity", pa.int64()), ("uid", pa.int64())])

RAW_MESSAGES = pa.schema(
    [
        ("folder", pa.string()),
        ("uidvalidity", pa.int64()),
        ("uid", pa.int64()),
        ("internaldate", UTC_TS),
        ("flags", pa.list_(pa.string())),
        ("size", pa.int64()),
        ("sha256", pa.string()),
        ("message_id", pa.string()),
        ("raw", pa.large_binary()),
        ("fetched_at", UTC_TS),
        # When the server was seen without the message (account policy `keep`); null while it is there.
        ("deleted_at", UTC_TS),
        # Why it is marked: 'folder_gone' when its whole folder left the server (deleted, or renamed
        # where the account does not follow the new name); null for a message expunged or moved
        # away, and in files written before the column existed.
        ("deleted_reason", pa.string()),
    ]
)

EMAILS = pa.schema(
    [
        ("email_id", pa.string()),
        ("message_id", pa.string()),
        ("message_id_synthetic", pa.bool_()),
        ("in_reply_to", pa.string()),
        ("references", pa.list_(pa.string())),
        ("thread_id", pa.string()),
        ("subject", pa.string()),
        ("subject_normalized", pa.string()),
        ("from_name", pa.string()),
        ("from_address", pa.string()),
        ("to", pa.list_(ADDRESS)),
        ("cc", pa.list_(ADDRESS)),
        ("bcc", pa.list_(ADDRESS)),
        ("reply_to", pa.list_(ADDRESS)),
        ("list_id", pa.string()),
        ("sent_at", UTC_TS),
        ("received_at", UTC_TS),
        ("body_source", pa.string()),
        ("body_text", pa.large_string()),
        ("search_text", pa.large_string()),
        ("attachments", pa.list_(ATTACHMENT)),
        ("attachment_texts", pa.list_(ATTACHMENT_TEXT)),
        ("seen", pa.bool_()),
        ("answered", pa.bool_()),
        ("flagged", pa.bool_()),
        ("locations", pa.list_(LOCATION)),
        ("size", pa.int64()),
        ("sha256", pa.string()),
        ("defects", pa.list_(pa.string())),
        # the flags that are not system flags (RFC 3501 2.3.2): labels
        (
            "keywords",
            pa.list_(pa.string()),
        ),
        ("deleted_at", UTC_TS),  # null while a copy is on the server (see raw_messages.deleted_at)
        # the last copy's raw_messages.deleted_reason ('folder_gone')
        (
            "deleted_reason",
            pa.string(),
        ),
    ]
)

EMAIL_CHUNKS = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("email_id", pa.string()),
        ("ordinal", pa.int32()),
        ("text", pa.large_string()),
        ("token_count", pa.int32()),
        ("text_sha256", pa.string()),
        ("thread_id", pa.string()),
        ("subject", pa.string()),
        ("sender", pa.string()),
        ("sent_at", UTC_TS),
        ("attachment", pa.string()),  # the attachment the text is from; null for the body
        ("deleted_at", UTC_TS),  # the email's (emails.deleted_at)
        # of what the email's chunks were cut from (stages/chunks.py)
        (
            "source_sha256",
            pa.string(),
        ),
    ]
)

SYNC_LOG = pa.schema(
    [
        ("run_id", pa.string()),
        ("folder", pa.string()),
        ("partition_day", pa.date32()),
        ("started_at", UTC_TS),
        ("finished_at", UTC_TS),
        ("uidvalidity", pa.int64()),
        ("highest_uid", pa.int64()),
        ("messages_fetched", pa.int64()),
        ("bytes_fetched", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
        # the folder's HIGHESTMODSEQ at the sync (RFC 7162), null without CONDSTORE
        (
            "highestmodseq",
            pa.int64(),
        ),
        ("flags_reconciled_at", UTC_TS),
    ]
)

# One row per correspondent of an account over the window (stages/contacts.py): each account's
# only file is the day it was built.
CONTACTS = pa.schema(
    [
        ("address", pa.string()),
        ("display_names", pa.list_(pa.string())),
        ("organisation", pa.string()),
        ("messages_from", pa.int64()),  # mail they sent
        ("messages_to", pa.int64()),  # mail with them among the recipients (To, Cc, Bcc)
        ("threads", pa.int64()),
        ("first_seen", UTC_TS),
        ("last_seen", UTC_TS),
        ("last_written_to", UTC_TS),  # the owner's latest mail to them; null if never
    ]
)

# A day's digest (stages/digest.py): its items in order, each section's with the same `section`.
DIGEST_ITEMS = pa.schema(
    [
        ("section", pa.string()),
        ("rank", pa.int32()),
        ("email_id", pa.string()),
        ("thread_id", pa.string()),
        ("subject", pa.string()),
        ("sender", pa.string()),
        ("address", pa.string()),
        ("message_at", UTC_TS),
        ("extract", pa.string()),
        ("detail", pa.string()),  # "3 messages", attachments' names
    ]
)

# Overlays of the two tables above (storage/state.py): the current flags and deleted_at of rows
# whose content file was written before they changed; a row per changed message, keyed as named.
MESSAGE_STATE = pa.schema(
    [
        f
        for f in RAW_MESSAGES
        if f.name in ("folder", "uidvalidity", "uid", "flags", "deleted_at", "deleted_reason")
    ]
)
EMAIL_STATE = pa.schema(
    [
        f
        for f in EMAILS
        if f.name
        in ("email_id", "seen", "answered", "flagged", "keywords", "deleted_at", "deleted_reason")
    ]
)

# Table name -> schema of the per-partition files. sync_log is append-only (one small file per
# run), the others hold at most one file per (account, day).
TABLES: dict[str, pa.Schema] = {
    "raw_messages": RAW_MESSAGES,
    "emails": EMAILS,
    "email_chunks": EMAIL_CHUNKS,
    "sync_log": SYNC_LOG,
    "message_state": MESSAGE_STATE,
    "email_state": EMAIL_STATE,
    "contacts": CONTACTS,
    "daily_digest": DIGEST_ITEMS,
}
