"""Which messages an export writes, read from the lake a day at a time.

The emails view gives the distinct messages, their current flags and the search operators' filter;
each day's raw bytes are then streamed from that day's raw_messages file in small batches, so
memory holds one batch of messages, whatever the size of the export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from mail_pipeline.export.formats import ExportedMessage
from mail_pipeline.indexing.filters import Where, where_clause
from mail_pipeline.indexing.query import ParsedQuery, Term, parse_query

BATCH_ROWS = 64


@dataclass(frozen=True)
class Selection:
    account: str
    since: date | None
    until: date | None
    query: str
    today: date

    def where(self) -> Where:
        """The emails the export takes: in the account and days, matching the query, where the
        query's free words must each appear as a word (there is no ranking to do)."""
        parsed = parse_query(self.query)
        words = tuple(Term("word", word) for word in parsed.text.split() if word.strip('"'))
        return where_clause(
            ParsedQuery("", parsed.terms + words), self.today, self.account, self.since, self.until
        )


def count(con: Any, selection: Selection) -> int:
    where = selection.where()
    row = con.execute(f"SELECT count(*) FROM emails WHERE {where.sql}", where.params).fetchone()
    return int(row[0])


def _days(con: Any, where: Where) -> list[date]:
    sql = f"SELECT DISTINCT day FROM emails WHERE {where.sql} ORDER BY day"
    return [row[0] for row in con.execute(sql, where.params).fetchall()]


def messages(con: Any, selection: Selection) -> Iterator[ExportedMessage]:
    """The selected messages, day by day, each once (the first copy of it read)."""
    where = selection.where()
    for day in _days(con, where):
        sql = (
            "WITH chosen AS (SELECT email_id, sha256, received_at, seen, answered, flagged, "
            f"keywords FROM emails WHERE ({where.sql}) AND day = ?) "
            "SELECT c.*, r.raw FROM chosen c JOIN raw_messages r "
            "ON r.sha256 = c.sha256 AND r.account = ? AND r.day = ?"
        )  # no ORDER BY: a sort would hold the day's bytes; the file names carry the arrival
        cursor = con.cursor()
        try:
            cursor.execute(sql, [*where.params, day, selection.account, day])
            seen: set[str] = set()
            while batch := cursor.fetchmany(BATCH_ROWS):
                for (
                    email_id,
                    _sha,
                    received_at,
                    seen_flag,
                    answered,
                    flagged,
                    keywords,
                    raw,
                ) in batch:
                    if email_id in seen:
                        continue  # the same message in another folder
                    seen.add(email_id)
                    yield ExportedMessage(
                        email_id,
                        received_at,
                        bytes(raw),
                        bool(seen_flag),
                        bool(answered),
                        bool(flagged),
                        tuple(keywords or ()),
                    )
        finally:
            cursor.close()
