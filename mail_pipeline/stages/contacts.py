"""contacts: who an account corresponds with over the window, one row per address.

Built from the `emails` view of the whole window at once (an address's counts span days), and
written as the account's only file of the table, dated the day it was built: the lake's layout
stays account × day, and `contacts` in DuckDB always holds each account's latest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import pyarrow as pa

from mail_pipeline.storage.lake import Lake, WriteResult
from mail_pipeline.storage.schemas import CONTACTS

# Second-level labels under which organisations register (example.co.uk, example.com.au).
_SECOND_LEVEL = frozenset(["co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "ne", "or"])

CONTACTS_SQL = """
WITH mail AS (
    SELECT email_id, thread_id, coalesce(sent_at, received_at) AS seen_at, from_address, from_name,
           list_contains(?, lower(from_address)) AS by_owner,
           list_concat(coalesce("to", []), coalesce(cc, []), coalesce(bcc, [])) AS recipients
    FROM emails WHERE account = ? AND day >= ?::DATE AND day <= ?::DATE),
senders AS (
    SELECT lower(from_address) AS address, from_name AS name, email_id, thread_id, seen_at,
           true AS sent_it, false AS owner_wrote
    FROM mail WHERE from_address IS NOT NULL AND from_address <> ''),
addressed AS (
    SELECT lower(r.address) AS address, r.name AS name, email_id, thread_id, seen_at,
           false AS sent_it, by_owner AS owner_wrote
    FROM (SELECT *, unnest(recipients) AS r FROM mail)
    WHERE r.address IS NOT NULL AND r.address <> '')
SELECT address,
       list_sort(list_distinct(list(name) FILTER (WHERE coalesce(name, '') <> ''))) AS display_names,
       count(DISTINCT email_id) FILTER (WHERE sent_it) AS messages_from,
       count(DISTINCT email_id) FILTER (WHERE NOT sent_it) AS messages_to,
       count(DISTINCT thread_id) AS threads,
       min(seen_at) AS first_seen,
       max(seen_at) AS last_seen,
       max(seen_at) FILTER (WHERE owner_wrote) AS last_written_to
FROM (SELECT * FROM senders UNION ALL SELECT * FROM addressed)
WHERE NOT list_contains(?, address)
GROUP BY address
ORDER BY address
"""


def organisation(address: str) -> str:
    """The organisation's domain of an address: its registered domain, by a rule of thumb
    (the last two labels, three under a second-level label such as co.uk)."""
    labels = address.rpartition("@")[2].lower().strip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def contact_rows(
    con: Any, account: str, owner: Iterable[str], first: date, last: date
) -> list[dict[str, Any]]:
    """One row per address seen in the account's mail from `first` to `last` (the owner's own
    addresses left out), with the organisation's domain."""
    mine = sorted({address.lower() for address in owner if address})
    cursor = con.cursor()
    try:
        cursor.execute(CONTACTS_SQL, [mine, account, first, last, mine])
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()
    for row in rows:
        row["organisation"] = organisation(row["address"])
    return rows


def write_contacts(
    lake: Lake, account: str, today: date, rows: list[dict[str, Any]]
) -> WriteResult:
    """Make `rows` the account's contacts: written as today's file, then earlier ones removed."""
    result = lake.write_partition("contacts", account, today, pa.Table.from_pylist(rows, CONTACTS))
    for slug, day in lake.list_partitions("contacts", account):
        if day != today:
            lake.drop_partition("contacts", slug, day)
    return result
