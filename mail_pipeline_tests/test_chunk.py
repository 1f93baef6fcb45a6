"""Chunking, measured with the embedding model's real tokenizer (no model weights loaded)."""

from __future__ import annotations

import hashlib
import itertools
import random
from datetime import UTC, datetime

import pytest

from mail_pipeline.indexing import Embedder
from mail_pipeline.indexing.chunk import LONG_RUN_CHARS, Chunk, body_spans, chunk_email

MAX = 256
SENT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
WORDS = [
    "invoice",
    "payment",
    "schedule",
    "meeting",
    "tomorrow",
    "quarterly",
    "report",
    "server",
    "outage",
    "database",
    "migration",
    "customer",
    "hiring",
    "interview",
    "flight",
    "hotel",
    "booking",
    "contract",
    "renewal",
    "budget",
    "approval",
]


@pytest.fixture(scope="module")
def tokens():
    return Embedder().tokens


def english(paragraphs: int, sentences: int = 6, seed: int = 1) -> str:
    rng = random.Random(seed)

    def sentence():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."

    return "\n\n".join(" ".join(sentence() for _ in range(sentences)) for _ in range(paragraphs))


TEXTS = {
    "long english": english(40),
    "one paragraph": english(1, sentences=60),
    "one line": "Short note: the build is green again.",
    "hard-wrapped lines": "\n".join(english(1, 40).split(". ")),
    "japanese": "東京の会議は明日の午後三時に開始します。資料は事前に共有してください。" * 200,
    "chinese": "我们明天下午三点在北京开会讨论发票问题" * 300,
    "cjk without punctuation": "会議資料共有請求書支払期限確認" * 500,
    "russian": "Привет, как дела? Счёт на оплату прилагается, срок оплаты пятница. " * 200,
    "german": "Die Rechnungsprüfungsabteilung übermittelt die Unterlagen fristgerecht. " * 250,
    "one 50k-char word": "a" * 50_000,
    "random 50k-char word": "".join(
        random.Random(2).choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(50_000)
    ),
    "long url": "See https://tracker.example.com/click?"
    + "&".join(f"utm_{i}=Zm9vYmFy{i:05d}" for i in range(3000)),
    "base64 blob": "Attachment: " + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 800,
    "mixed": english(5)
    + "\n\n"
    + "請求書を確認してください。" * 50
    + "\n\n"
    + "x" * 3000
    + "\n\n"
    + english(3, seed=3),
}


def chunks_of(text: str, tokens, **kw) -> list[Chunk]:
    return chunk_email(
        email_id="e-1",
        subject=kw.pop("subject", "Quarterly report"),
        sender="alice@example.com",
        sent_at=SENT,
        search_text=text,
        tokens=tokens,
        max_tokens=MAX,
        **kw,
    )


def body(chunk: Chunk) -> str:
    return chunk.text.split("\n", 1)[1]


def spans_of(text: str, tokens) -> list[tuple[int, int]]:
    """Where each chunk's body sits in the text, checked against chunk_email's output."""
    chunks = chunks_of(text, tokens)
    header = chunks[0].text.split("\n", 1)[0] + "\n"
    spans = [(start, end) for start, end, _ in body_spans(text, header, tokens, MAX, 32)]
    assert [body(c) for c in chunks] == [text[start:end] for start, end in spans]
    return spans


@pytest.mark.parametrize("name", list(TEXTS))
def test_no_chunk_exceeds_the_model_limit(tokens, name):
    chunks = chunks_of(TEXTS[name], tokens)
    assert chunks
    for chunk in chunks:
        assert tokens.count(chunk.text) == chunk.token_count <= MAX


@pytest.mark.parametrize("name", list(TEXTS))
def test_nothing_is_truncated(tokens, name):
    text = TEXTS[name]
    spans = spans_of(text, tokens)
    covered = 0
    assert all(a[0] < b[0] for a, b in itertools.pairwise(spans))
    for start, end in spans:
        assert not text[covered:start].strip(), "a gap between chunks lost text"
        covered = max(covered, end)
    assert not text[: spans[0][0]].strip() and not text[covered:].strip()
    for start, end in tokens.offsets(text):  # every word piece lies inside one chunk's body
        if end - start <= LONG_RUN_CHARS:
            assert any(s <= start and end <= e for s, e in spans), text[start:end]


def test_long_text_breaks_at_paragraphs_and_sentences(tokens):
    chunks = chunks_of(TEXTS["long english"], tokens)
    assert len(chunks) > 5
    assert all(body(c).endswith(".") for c in chunks)
    assert min(c.token_count for c in chunks[:-1]) > MAX // 2


def test_consecutive_chunks_overlap(tokens):
    text = TEXTS["one paragraph"]
    spans = spans_of(text, tokens)
    assert len(spans) > 2
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end - start > 0  # the next chunk starts before this one ends
        assert len(tokens.offsets(text[start:end])) <= 48


def test_header_carries_context_and_is_clipped(tokens):
    chunk = chunks_of("Body text.", tokens, subject="Budget " * 500)[0]
    header = chunk.text.split("\n", 1)[0]
    assert (
        header.startswith("Subject: Budget Budget")
        and "| From: alice@example.com | Date: 2026-03-02" in header
    )
    assert header.count("Budget") <= 32 and header.endswith("2026-03-02")
    assert (
        chunk_email(
            email_id="e", subject="Hi", sender="b@x", sent_at=None, search_text="x", tokens=tokens
        )[0].text
        == "Subject: Hi | From: b@x\nx"
    )


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_empty_text_has_no_chunks(tokens, text):
    assert chunks_of(text, tokens) == []


def test_ids_are_deterministic(tokens):
    first, second = chunks_of(TEXTS["mixed"], tokens), chunks_of(TEXTS["mixed"], tokens)
    assert first == second
    assert [c.ordinal for c in first] == list(range(len(first)))
    for chunk in first:
        assert chunk.chunk_id == hashlib.sha256(f"e-1:{chunk.ordinal}".encode()).hexdigest()[:24]
        assert chunk.text_sha256 == hashlib.sha256(chunk.text.encode()).hexdigest()
    assert len({c.chunk_id for c in first}) == len(first)


def test_counter_includes_special_tokens(tokens):
    assert tokens.count("hello") == 3  # [CLS] hello [SEP]
    assert tokens.offsets("hello world") == [(0, 5), (6, 11)]
    assert tokens.count("word " * 1000) == 1002  # no truncation at the tokenizer's 128 default


def test_attachments_are_chunked_apart_after_the_body(tokens):
    attachments = [
        ("contract.pdf", TEXTS["long english"]),
        ("empty.txt", "  \n"),
        ("rates.xlsx", "Rate\t120 EUR"),
    ]
    chunks = chunks_of("See the attached contract.", tokens, attachments=attachments)
    assert chunks[0].attachment is None and body(chunks[0]) == "See the attached contract."
    names = [c.attachment for c in chunks]
    assert names == [None] + ["contract.pdf"] * (len(chunks) - 2) + ["rates.xlsx"]
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert (
        chunks[1].text.split("\n", 1)[0].endswith("| Date: 2026-03-02 | Attachment: contract.pdf")
    )
    assert body(chunks[-1]) == "Rate\t120 EUR" and all(c.token_count <= MAX for c in chunks)
    # The body's chunks are what they were without attachments: their ids and cached vectors hold.
    assert chunks[0] == chunks_of("See the attached contract.", tokens)[0]
    # Attachment text alone still gets chunks.
    assert [c.attachment for c in chunks_of("", tokens, attachments=attachments[2:])] == [
        "rates.xlsx"
    ]
