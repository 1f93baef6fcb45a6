"""Search the indexed mail: emails, not chunks, best first.

The store is searched for chunks (several per email), the best chunk of each email becomes its
snippet, and the emails are described from the DuckDB catalog when it is there (the lake is the
source of truth), else from the chunk rows themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

from mail_pipeline.settings import Settings, get_settings
from mail_pipeline.storage.vectors import VectorStore

if TYPE_CHECKING:
    from mail_pipeline.embedding import Embedder

MODES = ("vector", "text", "hybrid")
# Chunks fetched per email wanted: long emails bring several chunks to the top.
OVERFETCH = 5
MAX_ROUNDS = 3
SNIPPET_CHARS = 300
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")
_STOP = frozenset("the and for are was were what when where which who why how does did with from that this "
                  "have has about your our their there into over".split())
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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


@lru_cache(maxsize=2)
def _shared_embedder(model: str, precision: str, batch_size: int) -> Embedder:
    from mail_pipeline.embedding import Embedder

    return Embedder(model, precision=precision, batch_size=batch_size)


def _query_terms(query: str) -> set[str]:
    return {w for w in _WORD.findall(query.lower()) if len(w) >= 3 and w not in _STOP}


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


def best_chunk_per_email(chunks: list[dict]) -> list[dict]:
    """Chunk hits (best first) reduced to one per (account, email), keeping order."""
    seen: dict[tuple[str, str], dict] = {}
    for chunk in chunks:
        seen.setdefault((chunk["account"], chunk["email_id"]), chunk)
    return list(seen.values())


def _fetch_emails(store: VectorStore, query: str, vector, k: int, mode: str, **filters) -> list[dict]:
    fetch = k * OVERFETCH
    for _ in range(MAX_ROUNDS):
        chunks = store.search(query, vector, mode=mode, k=fetch, **filters)
        emails = best_chunk_per_email(chunks)
        if len(emails) >= k or len(chunks) < fetch:
            break
        fetch *= 4
    return emails[:k]


def _catalog_rows(settings: Settings, email_ids: list[str]) -> dict[tuple[str, str], dict]:
    """(account, email_id) -> subject, from_address, sent_at, thread_id from the `emails` view."""
    path = settings.warehouse_path
    if not email_ids or not path.exists():
        return {}
    import duckdb

    from mail_pipeline.storage import catalog

    sql = ("SELECT account, email_id, subject, from_address, epoch_us(sent_at) AS sent_us, thread_id "
           "FROM emails WHERE email_id IN (SELECT unnest(?))")
    try:
        with catalog.connect(path) as con:
            rows = con.execute(sql, [email_ids]).fetchall()
    except duckdb.Error:  # lock held by a writer, view not created yet, empty lake: use the chunk rows
        return {}
    return {(a, e): {"subject": s, "sender": f, "sent_us": us, "thread_id": t} for a, e, s, f, us, t in rows}


def _sent_at(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return _EPOCH + timedelta(microseconds=int(value))


def _hit(chunk: dict, catalog_row: dict | None, query: str) -> SearchHit:
    row = catalog_row or {}
    return SearchHit(
        email_id=chunk["email_id"],
        account=chunk["account"],
        subject=row.get("subject") or chunk.get("subject") or "",
        sender=row.get("sender") or chunk.get("sender") or "",
        sent_at=_sent_at(row["sent_us"]) if row.get("sent_us") is not None else _sent_at(chunk.get("sent_at")),
        thread_id=row.get("thread_id") or chunk.get("thread_id") or "",
        snippet=snippet(chunk.get("text") or "", query),
        score=float(chunk["_score"]),
        day=chunk["day"],
    )


def search(query: str, k: int = 10, account: str | None = None, since: date | None = None,
           until: date | None = None, mode: str = "hybrid", *, settings: Settings | None = None,
           embedder: Embedder | None = None) -> list[SearchHit]:
    """The k emails that best match `query`, best first, optionally within an account and days."""
    if mode not in MODES:
        raise ValueError(f"search mode must be one of {MODES}, not {mode!r}")
    if not query or not query.strip() or k <= 0:
        return []
    settings = settings or get_settings()
    if embedder is None and mode != "text":
        embedder = _shared_embedder(settings.embedding_model, settings.embedding_precision,
                                    settings.embedding_batch_size)
    store = VectorStore(settings.lancedb_dir, dimension=embedder.dimension if embedder else 384)
    if store.count() == 0:
        raise EmptyStoreError(f"nothing indexed yet in {settings.lancedb_dir}: run the pipeline first")
    vector = embedder.encode([query])[0] if mode != "text" else None
    emails = _fetch_emails(store, query, vector, k, mode, account=account, since=since, until=until)
    described = _catalog_rows(settings, sorted({chunk["email_id"] for chunk in emails}))
    return [_hit(chunk, described.get((chunk["account"], chunk["email_id"])), query) for chunk in emails]
