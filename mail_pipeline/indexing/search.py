"""Search the indexed mail: emails, not chunks, best first.

The store is searched for chunks (several per email), the best chunk of each email becomes its
snippet. The emails are described from the chunk rows themselves: `email_embeddings` copies
subject, sender, date and thread from the `emails` partition it is built from, in the same run,
and a stored email keeps its thread id when later mail joins the thread (message/threads.py), so
they agree with the lake; a search reads no Parquet. Hydrating from the DuckDB catalog instead
cost 20-47 ms of the 50 ms budget (bench/RESULTS.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mail_pipeline.indexing import ranking
from mail_pipeline.indexing.filters import LISTING_COLUMNS, matching_emails, where_clause
from mail_pipeline.indexing.query import parse_query
from mail_pipeline.settings import Settings
from mail_pipeline.storage.vectors import VectorStore

if TYPE_CHECKING:
    import duckdb

    from mail_pipeline.indexing import Embedder

MODES = ("vector", "text", "hybrid")
NO_EMAIL_MATCHES_NOTE = "no email matches the operators"
# Chunks fetched per email wanted: long emails bring several chunks to the top.
OVERFETCH = 5
MAX_ROUNDS = 3
SNIPPET_CHARS = 300
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")


class EmptyStoreError(Exception):
    """The vector store holds no rows yet."""


@dataclass(frozen=True)
class SearchHit:
    email_id: str
    account: str
    subject: str
    sender: str
    sent_at: datetime | None
    thread_id: str
    snippet: str
    score: float
    day: date
    deleted_at: datetime | None = None  # when the message left the server (account policy `keep`)
    attachment: str | None = None  # the attachment the best chunk is from; None for the body


@lru_cache(maxsize=4)
def shared_store(uri: str, dimension: int) -> VectorStore:
    """One store handle per process and directory: LanceDB caches the opened indexes in it
    (loading the vector index costs about 50 ms at 56k chunks), and it still sees every commit
    made since (`read_consistency_interval` 0)."""
    return VectorStore(uri, dimension=dimension)


def _query_terms(query: str) -> set[str]:
    return {w for w in _WORD.findall(query.lower()) if len(w) >= 3 and w not in ranking.STOPWORDS}


def _focus(body: str, query: str) -> int:
    """Start of the sentence-aligned window holding the most distinct query terms, the first of
    them as near its start as possible."""
    terms, lower = _query_terms(query), body.lower()
    best, best_key = 0, (0, 0)
    for start in [0] + [m.end() for m in _SENTENCE_GAP.finditer(body)]:
        window = lower[start : start + SNIPPET_CHARS]
        found = [window.find(term) for term in terms if term in window]
        key = (len(found), -min(found, default=0))
        if key > best_key:
            best, best_key = start, key
    return best


def snippet(chunk_text: str, query: str = "") -> str:
    """The chunk's body (header line dropped) on one line, cut to the part that matches `query`."""
    body = chunk_text.split("\n", 1)[1] if "\n" in chunk_text else chunk_text
    body = _SPACES.sub(" ", body).strip()
    if len(body) <= SNIPPET_CHARS:
        return body
    start = _focus(body, query)
    end = start + SNIPPET_CHARS
    return ("…" if start else "") + body[start:end].strip() + ("…" if end < len(body) else "")


def best_chunk_per_email(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chunk hits (best first) reduced to one per (account, email), keeping order."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in chunks:
        seen.setdefault((chunk["account"], chunk["email_id"]), chunk)
    return list(seen.values())


def _fetch_emails(
    search_chunks: Callable[[int], list[dict[str, Any]]], k: int
) -> list[dict[str, Any]]:
    """The best chunk of each of the k best emails: `search_chunks(n)` gives the n best chunks,
    asked again for more while long emails crowd the top with several chunks each."""
    fetch = k * OVERFETCH
    for _ in range(MAX_ROUNDS):
        chunks = search_chunks(fetch)
        emails = best_chunk_per_email(chunks)
        if len(emails) >= k or len(chunks) < fetch:
            break
        fetch *= 4
    return emails[:k]


@dataclass
class Probe:
    """What the hybrid search saw, for the no-match floor: words hits and the best similarity."""

    word_hits: int = 0
    best_similarity: float | None = None
    exact: bool = False  # a chunk matched exactly (an id, a phrase, a whole subject)


def _hybrid(
    store: VectorStore, query: str, embedder: Embedder, filters: dict[str, Any], probe: Probe
) -> Callable[[int], list[dict[str, Any]]]:
    """The n best chunks by vector and by words, fused by reciprocal rank with exact-match boosts
    (ranking.py). The words search runs while the query is embedded (once, whatever the rounds)
    and searched by vector: LanceDB and torch release the GIL, and the query encoder keeps to
    half the cores (query_encoder.py) so the two do not fight over them, as they did with torch
    on every core (words 62 ms, not 22)."""
    vector = None
    parts = ranking.parse_query(query)

    def ranked(n: int) -> list[dict[str, Any]]:
        nonlocal vector
        with ThreadPoolExecutor(max_workers=1) as pool:
            words = pool.submit(store.search_words, parts.text, n, **filters)
            if vector is None:
                vector = embedder.encode_query(parts.text)
            by_vector = store.search_vectors(vector, n, **filters)
            by_words = words.result()
        fused = ranking.fuse(by_vector, by_words, parts, n)
        probe.word_hits = len(by_words)
        probe.best_similarity = by_vector[0]["_score"] if by_vector else None
        # A subject in a script the words index does not split (日本語) still matches exactly.
        probe.exact = any(ranking.boost(hit, parts) >= ranking.EXACT_SUBJECT_BOOST for hit in fused)
        return fused

    return ranked


def _needed(embedder: Embedder | None, mode: str) -> Embedder:
    if embedder is None:  # `search` loads one for every mode but text
        raise ValueError(f"{mode} search needs an embedder")
    return embedder


def ranked_chunks(
    store: VectorStore,
    query: str,
    mode: str,
    embedder: Embedder | None,
    filters: dict[str, Any],
    probe: Probe | None = None,
) -> Callable[[int], list[dict[str, Any]]]:
    """`n -> the n best chunks` for the mode: by vector, by words (BM25), or both fused."""
    if mode == "hybrid":
        return _hybrid(store, query, _needed(embedder, mode), filters, probe or Probe())
    if mode == "vector":
        vector = _needed(embedder, mode).encode_query(query)
        return lambda n: store.search_vectors(vector, n, **filters)
    if mode == "text":
        return lambda n: store.search_words(query, n, **filters)
    raise ValueError(f"search mode must be one of {MODES}, not {mode!r}")


def _sent_at(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _hit(chunk: dict[str, Any], query: str) -> SearchHit:
    return SearchHit(
        email_id=chunk["email_id"],
        account=chunk["account"],
        subject=chunk.get("subject") or "",
        sender=chunk.get("sender") or "",
        sent_at=_sent_at(chunk.get("sent_at")),
        thread_id=chunk.get("thread_id") or "",
        snippet=snippet(chunk.get("text") or "", query),
        score=float(chunk["_score"]),
        day=chunk["day"],
        deleted_at=_sent_at(chunk.get("deleted_at")),
        attachment=chunk.get("attachment"),
    )


def _listed_hit(row: dict[str, Any]) -> SearchHit:
    """An email an operators-only query lists (newest first): no rank, its body's start as snippet."""
    body = _SPACES.sub(" ", row.get("body") or "").strip()
    return SearchHit(
        email_id=row["email_id"],
        account=row["account"],
        subject=row.get("subject") or "",
        sender=row.get("sender") or "",
        sent_at=_sent_at(row.get("sent_at") or row.get("received_at")),
        thread_id=row.get("thread_id") or "",
        snippet=body[:SNIPPET_CHARS] + ("…" if len(body) > SNIPPET_CHARS else ""),
        score=0.0,
        day=row["day"],
        deleted_at=_sent_at(row.get("deleted_at")),
    )


def catalog_connection(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the catalog's views (not warehouse.duckdb: storage/catalog.py)."""
    from mail_pipeline.storage.catalog import memory_connection
    from mail_pipeline.storage.lake import Lake

    return memory_connection(Lake(settings.lake_dir))


@dataclass(frozen=True)
class SearchResults:
    """The hits, and a note to show beside them (why there are none) or None."""

    hits: list[SearchHit]
    note: str | None = None


def search(
    query: str,
    k: int = 10,
    account: str | None = None,
    since: date | None = None,
    until: date | None = None,
    mode: str = "hybrid",
    *,
    settings: Settings,
    embedder: Embedder | None = None,
    exclude_deleted: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[SearchHit]:
    """The k emails that best match `query`, best first, optionally within an account and days,
    and without the messages that left the server (`exclude_deleted`). Operators in the query
    (indexing/query.py) select the emails first, through `con` (the catalog's views; opened here
    when None); a query of operators alone lists the emails they select, newest first.
    Raises QueryError for an unknown operator or a malformed value."""
    return find(
        query,
        k,
        account,
        since,
        until,
        mode,
        settings=settings,
        embedder=embedder,
        exclude_deleted=exclude_deleted,
        con=con,
    ).hits


def find(
    query: str,
    k: int = 10,
    account: str | None = None,
    since: date | None = None,
    until: date | None = None,
    mode: str = "hybrid",
    *,
    settings: Settings,
    embedder: Embedder | None = None,
    exclude_deleted: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
    accounts: Collection[str] | None = None,
) -> SearchResults:
    """As `search`, with a note when a hybrid query matched nothing: no word of it is indexed and
    no chunk is near it in meaning (ranking.SIMILARITY_FLOOR), so there are no hits rather than
    the nearest unrelated mail. `accounts` (an access token's scope) limits it to those accounts."""
    if mode not in MODES:
        raise ValueError(f"search mode must be one of {MODES}, not {mode!r}")
    if not query or not query.strip() or k <= 0:
        return SearchResults([])
    parsed = parse_query(query)
    only: dict[str, list[str]] | None = None
    if parsed.terms:
        con = con if con is not None else catalog_connection(settings)
        where = where_clause(
            parsed, settings.window.today(), account, since, until, exclude_deleted, accounts
        )
        if parsed.filters_only:
            listed = matching_emails(con, where, k, LISTING_COLUMNS)
            return SearchResults([_listed_hit(row) for row in listed])
        only = {}
        for row in matching_emails(con, where):
            only.setdefault(row["account"], []).append(row["email_id"])
        if not only:
            return SearchResults([], NO_EMAIL_MATCHES_NOTE)
        query = parsed.text
    if embedder is None and mode != "text":
        from mail_pipeline.indexing.embedder import shared_embedder

        embedder = shared_embedder(*settings.embedder_config)
    store = shared_store(str(settings.lancedb_dir), embedder.dimension if embedder else 384)
    if store.count() == 0:
        raise EmptyStoreError(
            f"nothing indexed yet in {settings.lancedb_dir}: run the pipeline first"
        )
    filters: dict[str, object] = {
        "account": account,
        "since": since,
        "until": until,
        "live_only": exclude_deleted,
        "accounts": accounts,
    }
    if only is not None:
        filters["emails"] = only
    probe = Probe()
    emails = _fetch_emails(ranked_chunks(store, query, mode, embedder, filters, probe), k)
    if (
        mode == "hybrid"
        and not probe.exact
        and ranking.unrelated(probe.word_hits, probe.best_similarity)
    ):
        return SearchResults([], ranking.NO_MATCH_NOTE)
    return SearchResults([_hit(chunk, query) for chunk in emails])
