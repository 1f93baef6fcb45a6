"""The read-only operations the search service, the MCP server and the CLI share: search, one
email, one thread, the accounts, the sync status; every answer plain JSON-ready data.

A `MailReader` keeps its handles warm for a long-lived process: the embedder (with its traced
query encoder once warmed), the LanceDB store and an in-memory DuckDB holding the catalog's views.
Not `warehouse.duckdb` itself: a process that kept that file open would block every update of its
views (storage/catalog.py), and the views read the lake's files at query time anyway.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import re
import threading
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from mail_pipeline.settings import Settings
from mail_pipeline.storage.accounts import AccountError, check_accounts, known_accounts

if TYPE_CHECKING:
    import duckdb

    from mail_pipeline.indexing import Embedder
    from mail_pipeline.storage.lake import Lake

MODES = ("hybrid", "vector", "text")
MAX_K = 100
EMAIL_COLUMNS = (
    'email_id, account, day, message_id, in_reply_to, "references", thread_id, subject, from_name, '
    'from_address, "to", cc, bcc, reply_to, list_id, sent_at, received_at, body_source, body_text, '
    "[{'filename': a.filename, 'content_type': a.content_type, 'size': a.size, 'inline': a.inline} "
    "FOR a IN attachments] AS attachments, seen, answered, flagged, locations, size, defects"
)
THREAD_COLUMNS = (
    "email_id, account, day, message_id, subject, from_name, from_address, sent_at, received_at, "
    "[a.filename FOR a IN attachments] AS attachments, left(body_text, 300) AS preview"
)
_WORD = re.compile(r"\w+")
# Words too common to be worth marking in a snippet (the search's own stop list is longer).
_UNMARKED = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "was",
        "were",
        "with",
        "from",
        "that",
        "this",
        "have",
        "has",
        "you",
        "your",
        "our",
    ]
)


class RequestError(ValueError):
    """Bad input from a caller (HTTP 400, an MCP tool error, a CLI error): the message says what."""


class NotFoundError(LookupError):
    """No email or thread with that id."""


class NothingIndexedError(LookupError):
    """Nothing is indexed yet (the pipeline has not run): the message says so."""


def jsonable(value: Any) -> Any:
    """Dates as ISO 8601 strings, containers walked; everything else as it is."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def parse_day(value: str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{name} must be a date YYYY-MM-DD, not {value!r}") from None


def parse_k(value: str | int | None, default: int = 10) -> int:
    if value is None or value == "":
        return default
    try:
        k = int(value)
    except ValueError:
        raise RequestError(f"k must be a whole number from 1 to {MAX_K}, not {value!r}") from None
    if not 1 <= k <= MAX_K:
        raise RequestError(f"k must be a whole number from 1 to {MAX_K}, not {value!r}")
    return k


def mark_spans(text: str, query: str) -> list[list[int]]:
    """[start, end) of the words of `text` matching a query word: the same word, or one sharing its
    first letters (a poor man's stemming: "invoice" marks "invoices")."""
    terms = {w.lower() for w in _WORD.findall(query) if w.lower() not in _UNMARKED}
    stems = {term[: max(4, len(term) - 2)] for term in terms if len(term) >= 5}
    spans = []
    for word in _WORD.finditer(text):
        lower = word.group().lower()
        if lower in terms or any(lower.startswith(stem) for stem in stems):
            spans.append([word.start(), word.end()])
    return spans


def hit_json(hit: Any, query: str) -> dict[str, Any]:
    """A search hit as the API, the MCP tool and `search --json` give it (snippet marks included)."""
    fields: dict[str, Any] = jsonable(dataclasses.asdict(hit))
    fields["marks"] = mark_spans(fields.get("snippet") or "", query)
    return fields


@dataclasses.dataclass
class _Handles:
    """The warm handles a reader and its scoped copies share."""

    embedder: Embedder | None
    search_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    duck_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    duck: duckdb.DuckDBPyConnection | None = None


class MailReader:
    """Read-only access to one data directory, with warm handles (thread-safe).

    `allowed` is the set of account slugs this reader may read (an access token's scope); None
    reads every account. Every read filters by it in its query, so mail of another account
    answers exactly as mail that does not exist."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        allowed: frozenset[str] | None = None,
    ):
        self.settings = settings
        self.allowed = allowed
        self._handles = _Handles(embedder)

    def scoped(self, allowed: frozenset[str] | None) -> MailReader:
        """This reader limited to `allowed` accounts, sharing its warm handles."""
        reader = copy.copy(self)
        reader.allowed = allowed
        return reader

    def scope_clause(self, prefix: str = " AND ") -> tuple[str, list[Any]]:
        """SQL (after `prefix`) and its parameter keeping rows of the allowed accounts only."""
        if self.allowed is None:
            return "", []
        return f"{prefix}list_contains(?, account)", [sorted(self.allowed)]

    @property
    def lake(self) -> Lake:
        from mail_pipeline.storage.lake import Lake

        return Lake(self.settings.lake_dir)

    @property
    def embedder(self) -> Embedder:
        if self._handles.embedder is None:
            from mail_pipeline.indexing.embedder import shared_embedder

            s = self.settings
            self._handles.embedder = shared_embedder(
                s.embedding_model, s.embedding_precision, s.embedding_batch_size
            )
        return self._handles.embedder

    def warm_up(self) -> None:
        """Load the model, build its traced query encoder (a process's second query does) and
        import LanceDB."""
        for text in ("warm up the model", "and its traced query encoder"):
            self.embedder.encode_query(text)
        self._sql("SELECT 1")
        # Every search opens the vector store, whose import otherwise falls on the first one
        # (22 s on a loaded 2-core machine, docs/live-mail.md).
        importlib.import_module("lancedb")

    # -- DuckDB ------------------------------------------------------------------------------

    def _connection(self) -> duckdb.DuckDBPyConnection:
        handles = self._handles
        with handles.duck_lock:
            if handles.duck is None:
                import duckdb

                from mail_pipeline.storage import catalog

                # The views need one file per table to exist; the pipeline writes these too.
                self.lake.ensure_placeholders()
                con = duckdb.connect(":memory:")
                for statement in catalog.view_statements(self.lake):
                    con.execute(statement)
                handles.duck = con
            return handles.duck

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The warm in-memory DuckDB holding the catalog's views."""
        return self._connection()

    def sql(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """`sql` over the catalog's views: the rows as dicts."""
        return self._sql(sql, params)

    def _sql(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self._connection().cursor()  # one per call: a connection is not for two threads
        try:
            cursor.execute(sql, params or [])
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    # -- accounts ----------------------------------------------------------------------------

    def account_slugs(self) -> set[str]:
        """Registered accounts and those with mail still stored (a removed account's mail stays),
        of those this reader is allowed."""
        known = known_accounts(self.settings.registry(), self.settings.lake_dir)
        return known if self.allowed is None else known & self.allowed

    def check_account(self, account: str | None) -> None:
        if account:
            try:
                check_accounts([account], self.account_slugs())
            except AccountError as error:
                raise RequestError(str(error)) from None

    def accounts(self) -> list[dict[str, Any]]:
        """Each account: slug, address, name, state, folders and the mail stored (no secrets)."""

        registered = self.settings.registry().load()
        stored = {
            row["account"]: row
            for row in self._sql(
                "SELECT account, sum(messages)::BIGINT AS emails, min(day) AS first_day, max(day) AS last_day "
                "FROM daily_volume GROUP BY account"
            )
        }
        out = []
        for slug in sorted(self.account_slugs()):
            account = registered.get(slug)
            row = stored.get(slug, {})
            out.append(
                jsonable(
                    {
                        "account": slug,
                        "email": account.email if account else None,
                        "display_name": account.display_name if account else None,
                        "registered": account is not None,
                        "active": bool(account and account.active),
                        "folders": list(account.folders) if account else [],
                        "emails": row.get("emails", 0),
                        "first_day": row.get("first_day"),
                        "last_day": row.get("last_day"),
                    }
                )
            )
        return out

    # -- reads -------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        mode: str = "hybrid",
        account: str | None = None,
        since: date | None = None,
        until: date | None = None,
        k: int = 10,
        exclude_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """The k best emails for `query` (indexing/search.py), validated, as JSON-ready dicts;
        without the messages that left the server if `exclude_deleted`."""
        answer = self.search_answer(
            query,
            mode=mode,
            account=account,
            since=since,
            until=until,
            k=k,
            exclude_deleted=exclude_deleted,
        )
        results: list[dict[str, Any]] = answer["results"]
        return results

    def search_answer(
        self,
        query: str,
        *,
        mode: str = "hybrid",
        account: str | None = None,
        since: date | None = None,
        until: date | None = None,
        k: int = 10,
        exclude_deleted: bool = False,
    ) -> dict[str, Any]:
        """`{"results": the hits as `search` gives them, "note": why there are none, or None}`:
        the note says when a query matched no word and nothing near it in meaning."""
        from mail_pipeline.indexing.query import QueryError, parse_query
        from mail_pipeline.indexing.search import EmptyStoreError, find

        if not query or not query.strip():
            raise RequestError("the query is empty")
        if mode not in MODES:
            raise RequestError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if since and until and since > until:
            raise RequestError(f"since ({since}) is after until ({until})")
        parse_k(k)
        self.check_account(account)
        try:
            parsed = parse_query(query)
            words = parsed.text
        except QueryError as error:
            raise RequestError(str(error)) from None
        embedder = self.embedder if mode != "text" else None
        # One search at a time: the traced encoder sets torch's thread count around each call.
        with self._handles.search_lock:
            try:
                found = find(
                    query,
                    k=k,
                    account=account,
                    since=since,
                    until=until,
                    mode=mode,
                    settings=self.settings,
                    embedder=embedder,
                    exclude_deleted=exclude_deleted,
                    accounts=self.allowed,
                    # The views only where operators select: plain words never read the lake.
                    con=self._connection() if parsed.terms else None,
                )
            except EmptyStoreError as error:
                raise NothingIndexedError(str(error)) from error
        return {"results": [hit_json(hit, words) for hit in found.hits], "note": found.note}

    def email(self, email_id: str, account: str | None = None) -> dict[str, Any]:
        """One email from the `emails` view: headers, dates, body text, attachments, locations."""
        self.check_account(account)
        scope, scope_params = self.scope_clause()
        where, params = "email_id = ?" + scope, [email_id, *scope_params]
        if account:
            where, params = where + " AND account = ?", [*params, account]
        rows = self._sql(
            f"SELECT {EMAIL_COLUMNS} FROM emails WHERE {where} ORDER BY account LIMIT 1", params
        )
        if not rows:
            raise NotFoundError(f"no email with id {email_id!r}")
        email: dict[str, Any] = jsonable(rows[0])
        return email

    def message_ids(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(account, email_id) -> the email's Message-ID, for the keys given."""
        if not keys:
            return {}
        scope, scope_params = self.scope_clause()
        rows = self._sql(
            "SELECT account, email_id, message_id FROM emails "
            "WHERE list_contains(?, struct_pack(a := account, e := email_id))" + scope,
            [[{"a": a, "e": e} for a, e in keys], *scope_params],
        )
        return {(row["account"], row["email_id"]): row["message_id"] for row in rows}

    def thread(self, thread_id: str, account: str | None = None) -> dict[str, Any]:
        """A thread's emails, oldest first (by sent date, else arrival)."""
        self.check_account(account)
        scope, scope_params = self.scope_clause()
        where, params = "thread_id = ?" + scope, [thread_id, *scope_params]
        if account:
            where, params = where + " AND account = ?", [*params, account]
        rows = self._sql(
            f"SELECT {THREAD_COLUMNS} FROM emails WHERE {where} "
            "ORDER BY coalesce(sent_at, received_at), email_id",
            params,
        )
        if not rows:
            raise NotFoundError(f"no thread with id {thread_id!r}")
        return {"thread_id": thread_id, "account": rows[0]["account"], "emails": jsonable(rows)}

    def sync_status(self) -> list[dict[str, Any]]:
        """Per account and folder: the last sync, its outcome, failures in a row, the last error."""
        from mail_pipeline import logs

        scope, params = self.scope_clause(" WHERE ")
        rows = self._sql(f"SELECT * FROM sync_status{scope} ORDER BY account, folder", params)
        for row in rows:
            if row.get("last_error"):
                row["last_error"] = logs.redact(row["last_error"])
        status: list[dict[str, Any]] = jsonable(rows)
        return status
