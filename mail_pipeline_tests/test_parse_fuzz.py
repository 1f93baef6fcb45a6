"""Seeded mutations of every sample: parse_message never raises, and quote stripping only removes."""

from __future__ import annotations

import random
import re

import pytest

from mail_pipeline.message.parse import ParsedEmail, parse_message
from mail_pipeline.message.quotes import strip_quotes_and_signature
from mail_pipeline_tests import mime_samples as s
from mail_pipeline_tests.reply_corpus import REPLIES

SAMPLES = [value for name, value in vars(s).items() if name.isupper() and isinstance(value, bytes)]
# Tokens that steer the parser and the quote stripper into their rarer branches.
TOKENS = [
    b"\r\n ",
    b"\r\n\t",
    b'"',
    b"(",
    b")",
    b"\\",
    b"<",
    b">",
    b"@",
    b",",
    b";",
    b":",
    b"=?utf-8?b?",
    b"boundary=",
    b"--",
    b"\r\n--",
    b"\r\n> ",
    b"\xc3",
    b"\xff",
    b"\x00",
    b"wrote:\r\n",
    b"-- \r\n",
    b"From: a\r\nSent: b\r\nTo: c\r\n",
    b'Content-Disposition: inline; filename="x.html"\r\n',
]


def mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(data) + 1)
        action = rng.random()
        if action < 0.4:
            data[pos:pos] = rng.choice(TOKENS)
        elif action < 0.7 and data:
            del data[pos : pos + rng.randint(1, 40)]
        elif data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
    return bytes(data)


@pytest.mark.parametrize("seed", range(8))
def test_mutated_samples_never_raise(seed):
    rng = random.Random(seed)
    for _ in range(60):
        raw = mutate(rng.choice(SAMPLES), rng)
        parsed = parse_message(raw)
        assert isinstance(parsed, ParsedEmail)
        assert not any(d.startswith("unparseable") for d in parsed.defects), parsed.defects
        assert "\ufffd" not in parsed.body_text + parsed.from_name + "".join(
            a.filename or "" for a in parsed.attachments
        )


@pytest.mark.parametrize("seed", range(4))
def test_quote_stripping_only_removes_lines(seed):
    rng = random.Random(seed)
    for _ in range(100):
        lines = rng.choice(REPLIES).body().split("\n")
        rng.shuffle(lines)
        text = "\n".join(lines[: rng.randint(0, len(lines))])
        stripped = strip_quotes_and_signature(text, forwarded=rng.random() < 0.3)
        kept = {line.strip() for line in text.split("\n")}
        assert all(line.strip() in kept for line in stripped.split("\n") if line.strip())
        # Nothing quoted is left; a ">>> " line survives only as a pasted Python session.
        assert all(
            line.lstrip().startswith(">>> ")
            for line in stripped.split("\n")
            if line.lstrip().startswith(">")
        )


ADDRESS_TOKENS = [
    '"',
    "(",
    ")",
    "<",
    ">",
    "@",
    ",",
    ";",
    ":",
    "\\",
    " ",
    "bob",
    "x.org",
    "Bob Smith",
    "=?utf-8?q?J=C3=B6?=",
]


@pytest.mark.parametrize("seed", range(4))
def test_address_headers_from_random_tokens(seed):
    rng = random.Random(seed)
    for _ in range(200):
        value = "".join(rng.choice(ADDRESS_TOKENS) for _ in range(rng.randint(1, 14)))
        parsed = parse_message(
            f"From: {value}\r\nTo: {value}, {value}\r\nMessage-ID: <f@x.org>\r\n\r\nx\r\n".encode()
        )
        assert not any(d.startswith("unparseable") for d in parsed.defects), value
        assert not any(c.isspace() for c in re.sub(r'"[^"]*"', "", parsed.from_address)), value
