"""Search operators (indexing/query.py) as a DuckDB WHERE clause over the `emails` view.

The vector store holds only what ranking needs (subject, sender, day); recipients, flags,
folders and attachments live in the lake, and flags change there without re-embedding. So the
terms select emails in DuckDB, and the ranking then runs in LanceDB prefiltered to exactly
those emails (indexing/search.py).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mail_pipeline.indexing.query import ParsedQuery, Term, age_cutoff

# an email's text for phrases and excluded words: subject, body, and attachments' names
_TEXT = (
    "(coalesce(subject, '') || ' ' || coalesce(body_text, '') || ' ' || "
    "array_to_string([coalesce(a.filename, '') FOR a IN coalesce(attachments, [])], ' '))"
)
_IS = {
    "unread": "NOT coalesce(seen, false)",
    "read": "coalesce(seen, false)",
    "flagged": "coalesce(flagged, false)",
    "answered": "coalesce(answered, false)",
}


@dataclass
class Where:
    """A conjunction of SQL conditions and their parameters, in order."""

    conditions: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, condition: str, *params: Any) -> None:
        self.conditions.append(condition)
        self.params.extend(params)

    @property
    def sql(self) -> str:
        return " AND ".join(f"({c})" for c in self.conditions) or "true"


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _addresses(column: str) -> str:
    return (
        f"list_bool_or([coalesce(x.address, '') ILIKE ? ESCAPE '\\' "
        f"OR coalesce(x.name, '') ILIKE ? ESCAPE '\\' FOR x IN coalesce({column}, [])] || [false])"
    )


def _condition(term: Term, today: date) -> tuple[str, list[Any]]:
    """The SQL true for an email the term (not negated) matches, and its parameters."""
    op, value, like = term.operator, term.value, _like(term.value)
    if op == "from":
        return (
            "coalesce(from_address, '') ILIKE ? ESCAPE '\\' "
            "OR coalesce(from_name, '') ILIKE ? ESCAPE '\\'",
            [like, like],
        )
    if op in ("to", "cc"):
        return _addresses(f'"{op}"'), [like, like]
    if op == "subject":
        return "coalesce(subject, '') ILIKE ? ESCAPE '\\'", [like]
    if op == "has":
        return (
            "list_bool_or([NOT coalesce(a.inline, false) FOR a IN coalesce(attachments, [])] || [false])",
            [],
        )
    if op == "filename":
        return (
            "list_bool_or([coalesce(a.filename, '') ILIKE ? ESCAPE '\\' "
            "FOR a IN coalesce(attachments, [])] || [false])",
            [like],
        )
    if op == "is":
        return _IS[value], []
    if op == "in":
        return (
            "list_bool_or([lower(l.folder) = lower(?) FOR l IN coalesce(locations, [])] || [false])",
            [value],
        )
    if op == "account":
        return "account = ?", [value]
    if op == "after":
        return "day >= ?::DATE", [value]
    if op == "before":
        return "day < ?::DATE", [value]
    if op == "newer_than":
        return "day >= ?::DATE", [age_cutoff(today, value)]
    if op == "older_than":
        return "day < ?::DATE", [age_cutoff(today, value)]
    if op == "phrase":
        return f"{_TEXT} ILIKE ? ESCAPE '\\'", [like]
    if op == "word":
        return f"regexp_matches({_TEXT}, ?, 'i')", [r"\b" + _regex_escape(value) + r"\b"]
    raise ValueError(f"no SQL for operator {op!r}")


def _regex_escape(value: str) -> str:
    return "".join("\\" + c if not c.isalnum() and c != "_" else c for c in value)


def where_clause(
    parsed: ParsedQuery,
    today: date,
    account: str | None = None,
    since: date | None = None,
    until: date | None = None,
    live_only: bool = False,
    accounts: Collection[str] | None = None,
) -> Where:
    """The WHERE over `emails` selecting exactly the emails the query's terms (and the search's
    own account, days and live-only options) allow."""
    where = Where()
    if live_only:
        where.add("deleted_at IS NULL")
    if account is not None:
        where.add("account = ?", account)
    if accounts is not None:
        where.add("list_contains(?, account)", sorted(accounts))
    if since is not None:
        where.add("day >= ?::DATE", since)
    if until is not None:
        where.add("day <= ?::DATE", until)
    for term in parsed.terms:
        condition, params = _condition(term, today)
        where.add(f"NOT coalesce(({condition}), false)" if term.negated else condition, *params)
    return where


LISTING_COLUMNS = (
    "email_id, account, day, subject, coalesce(from_name, from_address, '') AS sender, "
    "sent_at, received_at, thread_id, left(body_text, 600) AS body, deleted_at"
)


def matching_emails(
    con: Any, where: Where, limit: int | None = None, columns: str = "account, email_id"
) -> list[dict[str, Any]]:
    """The emails `where` selects, newest first (by arrival), as dicts of `columns`."""
    sql = (
        f"SELECT {columns} FROM emails WHERE {where.sql} "
        "ORDER BY received_at DESC NULLS LAST, email_id"
    )
    params = list(where.params)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    cursor = con.cursor()
    try:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()
