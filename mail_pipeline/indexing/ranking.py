"""How the hybrid search orders chunks: reciprocal rank fusion of the vector and words rankings,
plus boosts for what people type when they know what they want: an exact identifier (an invoice,
ticket or order number), a quoted phrase, the subject, a correspondent's name. And when to say
that nothing matches instead of showing the nearest unrelated mail.

Pure functions over the chunk rows the store returns (`text`, `subject`, `sender`, `_score`):
the search operators' parser (issue #28) hands this module the free text that is left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mail_pipeline.storage.vectors import reciprocal_rank_fusion

# RRF gives a chunk at most 2 / RRF_K (about 0.033, first in both rankings), and moving from
# rank 0 to rank 20 in one ranking costs about 0.004. An exact identifier must win outright; an
# exact subject must beat replies that share it ("Re: …") whatever their fused rank; words in
# the subject or the sender's name only reorder near neighbours.
IDENTIFIER_BOOST = 0.1
PHRASE_BOOST = 0.05
EXACT_SUBJECT_BOOST = 0.05
SUBJECT_TERMS_BOOST = 0.01
SENDER_TERMS_BOOST = 0.01
# all-MiniLM-L6-v2's cosine similarity of the nearest chunk, for queries that share no word with
# any chunk: gibberish reaches 0.25 at most, a question answered only by meaning 0.40
# (docs/search-ranking.md, measured with mail_pipeline_tests/ranking_eval.py).
SIMILARITY_FLOOR = 0.3
NO_MATCH_NOTE = "No email matches these words, and none is close in meaning."

# Letters and digits joined by dashes, dots, slashes, underscores or @: INV-2026-65017, QX7P2M,
# 1Z999AA10123456784, v4.2, jane.doe@example.com.
_TOKEN = re.compile(r"[\w@][\w@./-]*[\w]|\w")
_PHRASE = re.compile(r'"([^"]+)"')
_WORD = re.compile(r"\w+")
# Words too common to weigh in a match, or to choose a snippet by (search.py): English function
# words and the reply/forward prefixes.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "re",
        "fw",
        "fwd",
        "the",
        "this",
        "that",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "how",
        "with",
        "about",
        "into",
        "over",
        "your",
        "our",
        "my",
        "me",
        "i",
        "you",
        "does",
        "did",
        "their",
        "there",
    ]
)


@dataclass(frozen=True)
class QueryParts:
    """What in a query deserves an exact match: identifiers, quoted phrases, plain words."""

    text: str  # the query without its quotes, for the words and vector searches
    identifiers: tuple[str, ...]
    phrases: tuple[str, ...]
    terms: frozenset[str]
    normalized: str  # lowercased words, for comparing with a subject


def is_identifier(token: str) -> bool:
    """Whether `token` looks like an id rather than a word: it mixes letters and digits, or
    joins digits with separators, or is an address."""
    has_digit = any(c.isdigit() for c in token)
    has_letter = any(c.isalpha() for c in token)
    joined = any(c in "-./_" for c in token)
    return "@" in token or (has_digit and (has_letter or joined))


def normalize(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower())}


def parse_query(query: str) -> QueryParts:
    phrases = tuple(p.strip().lower() for p in _PHRASE.findall(query) if p.strip())
    text = " ".join(query.replace('"', " ").split())
    identifiers = tuple(
        dict.fromkeys(t.lower() for t in _TOKEN.findall(text) if is_identifier(t)).keys()
    )
    terms = frozenset(
        _stem(w) for w in _WORD.findall(text.lower()) if len(w) >= 2 and w not in STOPWORDS
    )
    return QueryParts(text, identifiers, phrases, terms, normalize(text))


def _contains(haystack: str, needle: str) -> bool:
    """`needle` in `haystack` (both lowercase) as a whole token, not inside a longer one."""
    pattern = r"(?<![\w@])" + re.escape(needle) + r"(?![\w@]|[-./]\w)"
    return re.search(pattern, haystack) is not None


def _share(found: int, total: int) -> float:
    return found / total if total else 0.0


def _display_name(sender: str) -> str:
    """ "Jane Doe <jane@…>" -> "Jane Doe"; a bare address has none (its words, "appointments@…",
    are not a person's name)."""
    return sender.split("<")[0] if "<" in sender else ""


def boost(chunk: dict[str, Any], parts: QueryParts) -> float:
    """What the chunk's exact matches add to its fused score."""
    subject = chunk.get("subject") or ""
    sender = _display_name(chunk.get("sender") or "")
    text = f"{subject}\n{chunk.get('text') or ''}".lower()
    score = IDENTIFIER_BOOST * _share(
        sum(_contains(text, i) for i in parts.identifiers), len(parts.identifiers)
    )
    score += PHRASE_BOOST * _share(sum(p in text for p in parts.phrases), len(parts.phrases))
    if parts.normalized and normalize(subject) == parts.normalized:
        score += EXACT_SUBJECT_BOOST
    if parts.terms:  # squared: one shared word of four ("data" in a query and a subject) is noise
        score += (
            SUBJECT_TERMS_BOOST * _share(len(parts.terms & _words(subject)), len(parts.terms)) ** 2
        )
        score += (
            SENDER_TERMS_BOOST * _share(len(parts.terms & _words(sender)), len(parts.terms)) ** 2
        )
    return score


def fuse(
    vector_hits: list[dict[str, Any]],
    word_hits: list[dict[str, Any]],
    parts: QueryParts,
    n: int,
) -> list[dict[str, Any]]:
    """The n best chunks of both rankings: reciprocal rank fusion plus each chunk's boost."""
    fused = reciprocal_rank_fusion([vector_hits, word_hits], len(vector_hits) + len(word_hits))
    for hit in fused:
        hit["_score"] += boost(hit, parts)
    return sorted(fused, key=lambda hit: -hit["_score"])[:n]


def unrelated(word_hits: int, best_similarity: float | None) -> bool:
    """Whether the query matched nothing: no word found by the words search, and the nearest
    chunk by meaning below the floor."""
    if word_hits or best_similarity is None:
        return False
    return best_similarity < SIMILARITY_FLOOR
