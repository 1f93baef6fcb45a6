"""Reads about people and what needs them, for the page and the API: a correspondent's mail and
threads, and an account's digest (digest/build.py), as JSON-ready data."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from mail_pipeline.service.reader import (
    THREAD_COLUMNS,
    MailReader,
    NotFoundError,
    RequestError,
    jsonable,
)


def person(reader: MailReader, who: str, account: str | None = None, k: int = 20) -> dict[str, Any]:
    """A correspondent, by address or display name: their contacts rows, and their recent
    mail (from them or to them) and threads, newest first."""
    reader.check_account(account)
    in_account, extra = reader.scope_clause()
    if account:
        in_account, extra = in_account + " AND account = ?", [*extra, account]
    params: list[Any] = [who, who, *extra]
    found = reader.sql(
        "SELECT DISTINCT lower(from_address) AS address FROM emails "
        f"WHERE (lower(from_address) = lower(?) OR from_name = ?){in_account}",
        params,
    )
    addresses = [row["address"] for row in found if row["address"]] or [who.lower()]
    involves = (
        "(list_contains(?, lower(from_address)) OR list_bool_or([list_contains(?, "
        'lower(x.address)) FOR x IN list_concat(coalesce("to", []), coalesce(cc, []))] || [false]))'
    )
    base = [addresses, addresses, *extra]
    emails = reader.sql(
        f"SELECT {THREAD_COLUMNS}, thread_id FROM emails WHERE {involves}{in_account} "
        "ORDER BY received_at DESC NULLS LAST, email_id LIMIT ?",
        [*base, k],
    )
    threads = reader.sql(
        "SELECT account, thread_id, arg_max(subject, received_at) AS subject, "
        "count(*) AS messages, max(received_at) AS last_at FROM emails "
        f"WHERE {involves}{in_account} GROUP BY account, thread_id "
        "ORDER BY last_at DESC LIMIT ?",
        [*base, k],
    )
    contacts = reader.sql(
        f"SELECT * EXCLUDE (day) FROM contacts WHERE list_contains(?, address){in_account} "
        "ORDER BY account",
        [addresses, *extra],
    )
    if not emails and not contacts:
        raise NotFoundError(f"no mail from or to {who!r}")
    answer: dict[str, Any] = jsonable(
        {
            "who": who,
            "addresses": addresses,
            "contacts": contacts,
            "emails": emails,
            "threads": threads,
        }
    )
    return answer


def digest(reader: MailReader, account: str, first: date, last: date) -> dict[str, Any]:
    """The account's digest of the days from `first` to `last`, read-only (digest/build.py)."""
    from mail_pipeline.digest.build import SECTIONS, build_digest

    reader.check_account(account)
    if first > last:
        raise RequestError(f"since ({first}) is after the day ({last})")
    registered = reader.settings.registry().load().get(account)
    built = build_digest(
        reader.connection(), account, [registered.email] if registered else [], first, last
    )
    sections = [
        {
            "name": name,
            "title": title,
            "items": [dataclasses.asdict(i) for i in built.section(name)],
        }
        for name, title in SECTIONS.items()
    ]
    answer: dict[str, Any] = jsonable(
        {"account": account, "first": first, "last": last, "sections": sections}
    )
    return answer
