"""daily_digest: what a day (or a chosen span of days) brought that needs the owner: threads
awaiting their reply, new correspondents, flagged mail, the busiest threads, attachments received.

Read from the `emails` view only, so building one never changes anything: the preview command and
the asset call the same function, and only the asset writes the result (its lake partition).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from mail_pipeline.storage.schemas import DIGEST_ITEMS

# A thread still waits for an answer this many days after its last message; older ones are
# taken as dropped, not pending.
AWAITING_DAYS = 7
BUSIEST_THREADS = 5
EXTRACT_CHARS = 200
SECTIONS = {
    "awaiting_reply": "Awaiting your reply",
    "new_correspondents": "New correspondents",
    "flagged": "Flagged",
    "busiest_threads": "Busiest threads",
    "attachments": "Attachments received",
}
# Senders that are machines, not people (the local part of the address).
_AUTOMATED = re.compile(
    r"^(no-?reply|do-?not-?reply|mailer-daemon|postmaster|notifications?|bounces?|alerts?|"
    r"automated|daemon)([+._-].*)?$",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")

_MAIL = """
SELECT email_id, thread_id, day, received_at, coalesce(sent_at, received_at) AS message_at, subject,
       coalesce(nullif(from_name, ''), from_address, '') AS sender, lower(from_address) AS address,
       list_id, coalesce(answered, false) AS answered, coalesce(flagged, false) AS flagged,
       list_contains(?, lower(from_address)) AS by_owner,
       coalesce(nullif(search_text, ''), body_text, '') AS text,
       [a.filename FOR a IN coalesce(attachments, []) IF NOT coalesce(a.inline, false)] AS files
FROM emails WHERE account = ? AND day <= ?::DATE
"""
_SECTION_SQL = {
    # the latest message of each thread, as of the end of the span: inbound, unanswered, recent
    "awaiting_reply": """
        SELECT *, '' AS detail FROM mail
        QUALIFY row_number() OVER (PARTITION BY thread_id ORDER BY received_at DESC, email_id DESC) = 1
              AND NOT by_owner AND NOT answered AND list_id IS NULL AND day >= ?::DATE""",
    # senders whose first stored message arrived in the span
    "new_correspondents": """
        SELECT * FROM (
            SELECT *, 'first message' AS detail FROM mail WHERE NOT by_owner AND address <> ''
            QUALIFY row_number() OVER (PARTITION BY address ORDER BY received_at, email_id) = 1)
        WHERE day >= ?::DATE AND list_id IS NULL""",
    "flagged": "SELECT *, '' AS detail FROM mail WHERE flagged AND day >= ?::DATE",
    # the latest message of each of the threads with the most messages in the span
    "busiest_threads": f"""
        SELECT * EXCLUDE (n), n || ' messages' AS detail FROM (
            SELECT *, count(*) OVER (PARTITION BY thread_id) AS n FROM mail WHERE day >= ?::DATE
            QUALIFY row_number() OVER (PARTITION BY thread_id ORDER BY received_at DESC, email_id DESC) = 1)
        WHERE n >= 2 ORDER BY n DESC, received_at DESC LIMIT {BUSIEST_THREADS}""",
    "attachments": """
        SELECT *, array_to_string(files, ', ') AS detail FROM mail
        WHERE len(files) > 0 AND NOT by_owner AND day >= ?::DATE""",
}


@dataclass(frozen=True)
class DigestItem:
    section: str
    email_id: str
    thread_id: str
    subject: str
    sender: str
    address: str
    message_at: datetime | None
    extract: str
    detail: str


@dataclass(frozen=True)
class Digest:
    account: str
    first: date
    last: date
    items: tuple[DigestItem, ...]

    def section(self, name: str) -> list[DigestItem]:
        return [item for item in self.items if item.section == name]


def is_automated(address: str) -> bool:
    return bool(_AUTOMATED.match(address.partition("@")[0]))


def extract(text: str) -> str:
    """The start of what was said, on one line."""
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= EXTRACT_CHARS else flat[:EXTRACT_CHARS].rstrip() + "…"


def _items(con: Any, section: str, params: list[Any]) -> list[DigestItem]:
    sql = f"WITH mail AS ({_MAIL}) {_SECTION_SQL[section]}"
    if "ORDER BY n DESC" not in sql:
        sql += " ORDER BY received_at DESC, email_id"
    cursor = con.cursor()
    try:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()
    people_only = section in ("awaiting_reply", "new_correspondents")
    return [
        DigestItem(
            section,
            row["email_id"],
            row["thread_id"] or "",
            row["subject"] or "",
            row["sender"],
            row["address"] or "",
            row["message_at"],
            extract(row["text"]),
            row["detail"] or "",
        )
        for row in rows
        if not (people_only and is_automated(row["address"] or ""))
    ]


def build_digest(con: Any, account: str, owner: Iterable[str], first: date, last: date) -> Digest:
    """The digest of the days from `first` to `last` (one day: first == last), from the emails
    view on `con`; a thread awaits a reply when its latest message up to `last` came from someone
    else, a person (no List-Id, not an automated sender), is not marked answered, and arrived in
    the span or the AWAITING_DAYS before its end."""
    mine = sorted({address.lower() for address in owner if address})
    base = [mine, account, last]
    items: list[DigestItem] = []
    for section in SECTIONS:
        since = (
            min(first, last - timedelta(days=AWAITING_DAYS - 1))
            if section == "awaiting_reply"
            else first
        )
        items += _items(con, section, [*base, since])
    return Digest(account, first, last, tuple(items))


def digest_table(digest: Digest) -> pa.Table:
    """The digest's items as its lake partition's rows, in order."""
    rows = [{**asdict(item), "rank": rank} for rank, item in enumerate(digest.items)]
    return pa.Table.from_pylist(rows, DIGEST_ITEMS)
