"""Chunking: an email's search text cut into pieces the embedding model reads whole.

all-MiniLM-L6-v2 reads at most 256 word pieces, [CLS] and [SEP] included, and silently drops the
rest. So pieces are measured with the model's own tokenizer: the body is tokenized once, chunk
boundaries are chosen on word-piece offsets (paragraph, then sentence, then line, then word, then
any word piece), and each finished chunk is counted once more with its header to verify the limit.
Every chunk starts with a one-line header (subject, sender, date, and the attachment's name for
an attachment's text) so it carries its context. Each attachment's text is chunked on its own,
after the body, with ordinals that carry on from the body's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# WordPiece turns any whitespace-free run longer than 100 characters into a single [UNK]
# (max_input_chars_per_word), so such runs (base64, tracking URLs, 50k-char "words") are
# measured in 100-character windows instead, and still split.
LONG_RUN_CHARS = 100
SUBJECT_TOKENS = 32
SENDER_TOKENS = 16
ATTACHMENT_TOKENS = 16
HEADER_FIELD_CHARS = 400
SENTENCE_END = frozenset(".!?…")
CJK_SENTENCE_END = frozenset("。！？；")
PARAGRAPH, SENTENCE, LINE, WORD, PIECE = 4, 3, 2, 1, 0
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    email_id: str
    ordinal: int
    text: str
    token_count: int
    text_sha256: str
    attachment: str | None = None  # the attachment's name; None for the body


class TokenCounter(Protocol):
    """The embedding model's tokenizer, wrapped."""

    def count(self, text: str) -> int:
        """Word pieces including the special tokens ([CLS], [SEP])."""

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the word pieces, special tokens excluded."""


def chunk_id(email_id: str, ordinal: int) -> str:
    return hashlib.sha256(f"{email_id}:{ordinal}".encode()).hexdigest()[:24]


def _clip(text: str, tokens: TokenCounter, max_pieces: int) -> str:
    text = _SPACES.sub(" ", text[:HEADER_FIELD_CHARS]).strip()
    spans = tokens.offsets(text)
    if len(spans) <= max_pieces:
        return text
    return text[: spans[max_pieces - 1][1]].rstrip() + "…"


def chunk_header(
    subject: str,
    sender: str,
    sent_at: datetime | None,
    tokens: TokenCounter,
    attachment: str | None = None,
) -> str:
    parts = [
        f"Subject: {_clip(subject or '', tokens, SUBJECT_TOKENS)}",
        f"From: {_clip(sender or '', tokens, SENDER_TOKENS)}",
    ]
    if sent_at is not None:
        parts.append(f"Date: {sent_at:%Y-%m-%d}")
    if attachment is not None:
        parts.append(f"Attachment: {_clip(attachment, tokens, ATTACHMENT_TOKENS)}")
    return " | ".join(parts) + "\n"


def _pieces(text: str, tokens: TokenCounter) -> list[tuple[int, int]]:
    """Word-piece spans of `text`; over-long runs re-measured in windows so they can split."""
    pieces: list[tuple[int, int]] = []
    for start, end in tokens.offsets(text):
        if end - start <= LONG_RUN_CHARS:
            pieces.append((start, end))
            continue
        for window in range(start, end, LONG_RUN_CHARS):
            part = text[window : min(window + LONG_RUN_CHARS, end)]
            pieces.extend((window + a, window + b) for a, b in tokens.offsets(part))
    return pieces


def _break_level(text: str, before: tuple[int, int], after: tuple[int, int]) -> int:
    gap = text[before[1] : after[0]]
    last = text[before[1] - 1] if before[1] > before[0] else ""
    if _BLANK_LINE.search(gap):
        return PARAGRAPH
    if last in CJK_SENTENCE_END or (gap and last in SENTENCE_END):
        return SENTENCE
    if "\n" in gap:
        return LINE
    return WORD if gap else PIECE


def _break_levels(text: str, pieces: list[tuple[int, int]]) -> list[int]:
    """levels[i]: how good a cut is just before piece i."""
    return [PIECE] + [_break_level(text, pieces[i - 1], pieces[i]) for i in range(1, len(pieces))]


def _pick_end(levels: list[int], start: int, hard_end: int) -> int:
    """The latest best break in the second half of the window (start, hard_end]."""
    if hard_end >= len(levels):
        return len(levels)
    best, best_level = hard_end, levels[hard_end]
    for i in range(hard_end - 1, start + max(1, (hard_end - start) // 2) - 1, -1):
        if levels[i] > best_level:
            best, best_level = i, levels[i]
            if best_level == PARAGRAPH:
                break
    return best


def _pick_next_start(levels: list[int], start: int, end: int, overlap: int) -> int:
    """Where the next chunk starts: `overlap` pieces back, moved forward to a word boundary."""
    if overlap <= 0 or end - start <= 2 * overlap:
        return end
    target = end - overlap
    best, best_level = target, levels[target]
    for i in range(target + 1, min(end, target + overlap // 2)):
        if levels[i] > best_level:
            best, best_level = i, levels[i]
    return best


def body_spans(
    text: str, header: str, tokens: TokenCounter, max_tokens: int = 256, overlap_tokens: int = 32
) -> list[tuple[int, int, int]]:
    """(start, end, token count) of each chunk's body in `text`: header + text[start:end] is the
    chunk, verified to fit `max_tokens`; consecutive bodies overlap by about `overlap_tokens`."""
    pieces = _pieces(text, tokens)
    if not pieces:
        return []
    levels = _break_levels(text, pieces)
    budget = max(1, max_tokens - tokens.count(header))
    out: list[tuple[int, int, int]] = []
    start = 0
    while start < len(pieces):
        hard_end = start + budget
        while True:
            end = max(start + 1, _pick_end(levels, start, hard_end))
            span = (pieces[start][0], pieces[end - 1][1])
            count = tokens.count(header + text[span[0] : span[1]])
            # Re-tokenizing a slice can differ slightly from the whole text's pieces (a cut
            # inside a word): shrink by the excess until the real count fits.
            if count <= max_tokens or end == start + 1:
                break
            hard_end = max(start + 1, min(hard_end, end) - (count - max_tokens))
        out.append((*span, count))
        if end >= len(pieces):
            break
        start = _pick_next_start(levels, start, end, overlap_tokens)
    return out


def _chunks(
    email_id: str,
    header: str,
    text: str,
    attachment: str | None,
    first: int,
    tokens: TokenCounter,
    max_tokens: int,
    overlap_tokens: int,
) -> list[Chunk]:
    chunks = []
    for ordinal, (start, end, count) in enumerate(
        body_spans(text, header, tokens, max_tokens, overlap_tokens), first
    ):
        piece = header + text[start:end]
        chunks.append(
            Chunk(
                chunk_id=chunk_id(email_id, ordinal),
                email_id=email_id,
                ordinal=ordinal,
                text=piece,
                token_count=count,
                text_sha256=hashlib.sha256(piece.encode()).hexdigest(),
                attachment=attachment,
            )
        )
    return chunks


def chunk_email(
    *,
    email_id: str,
    subject: str,
    sender: str,
    sent_at: datetime | None,
    search_text: str,
    tokens: TokenCounter,
    max_tokens: int = 256,
    overlap_tokens: int = 32,
    attachments: Sequence[tuple[str, str]] = (),
) -> list[Chunk]:
    """The email's chunks, in order: the body's, then each (name, text) attachment's; [] when
    there is no text to search."""
    chunks: list[Chunk] = []
    for name, text in [(None, search_text), *attachments]:
        if not text or not text.strip():
            continue
        header = chunk_header(subject, sender, sent_at, tokens, attachment=name)
        chunks += _chunks(
            email_id, header, text, name, len(chunks), tokens, max_tokens, overlap_tokens
        )
    return chunks
