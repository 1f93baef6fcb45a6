"""The synthetic mailbox: deterministic, well-formed, and mixed like a real inbox."""

from __future__ import annotations

import email
import email.policy
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from mail_pipeline.demo.synthetic import SyntheticMessage, generate_mailbox, iter_mailbox
from mail_pipeline.extract.documents import extract
from mail_pipeline.extract.kinds import ExtractLimits, Job

END = datetime(2026, 11, 15, tzinfo=UTC)
N = 2000


@pytest.fixture(scope="module")
def mailbox() -> list[SyntheticMessage]:
    return generate_mailbox(N, end=END, seed=3)


@pytest.fixture(scope="module")
def parsed(mailbox: list[SyntheticMessage]) -> list[EmailMessage]:
    return [email.message_from_bytes(m.raw, policy=email.policy.default) for m in mailbox]


def plain_text(msg: EmailMessage) -> str:
    """The text/plain body with LF line ends (the stdlib keeps the CRLF of the raw bytes)."""
    body = msg.get_body(("plain",))
    return body.get_content().replace("\r\n", "\n") if body else ""


def kind(msg: EmailMessage) -> str:
    if msg["List-Id"]:
        return "newsletter"
    if msg.get_content_type() == "multipart/mixed":
        return "attachment"
    if msg["In-Reply-To"]:
        return "reply"
    return msg.get_content_type()


def shares(parsed: list[EmailMessage]) -> dict[str, float]:
    counts = Counter(kind(msg) for msg in parsed)
    return {k: v / len(parsed) for k, v in counts.items()}


def test_same_arguments_give_identical_bytes() -> None:
    first = generate_mailbox(300, end=END, seed=11)
    assert first == generate_mailbox(300, end=END, seed=11)
    assert [m.raw for m in first] != [m.raw for m in generate_mailbox(300, end=END, seed=12)]


def test_iter_mailbox_streams_what_generate_mailbox_returns() -> None:
    stream = iter_mailbox(150, end=END, seed=5, days=7)
    assert next(stream) == generate_mailbox(150, end=END, seed=5, days=7)[0]
    assert list(iter_mailbox(150, end=END, seed=5, days=7)) == generate_mailbox(
        150, end=END, seed=5, days=7
    )


@pytest.mark.parametrize("n", [0, 1, 2, 57])
def test_count(n: int) -> None:
    assert len(generate_mailbox(n, end=END)) == n


@pytest.mark.parametrize("days", [1, 3, 30])
def test_internaldates_are_utc_ascending_within_the_window(days: int) -> None:
    dates = [m.internaldate for m in generate_mailbox(400, days=days, end=END, seed=1)]
    assert dates == sorted(dates)
    assert all(d.utcoffset() == timedelta(0) for d in dates)
    assert END - timedelta(days=days) <= dates[0] and dates[-1] < END
    assert dates[-1] - dates[0] > timedelta(days=days) * 0.9  # spread, not bunched


def test_end_defaults_to_the_current_hour_and_naive_end_means_utc() -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    dates = [m.internaldate for m in generate_mailbox(50)]
    assert hour - timedelta(days=30, hours=1) <= dates[0] and dates[-1] < hour + timedelta(hours=1)
    naive = generate_mailbox(20, end=END.replace(tzinfo=None), seed=2)
    assert naive == generate_mailbox(20, end=END, seed=2)


@pytest.mark.parametrize(
    "kwargs", [{"n": -1}, {"n": 5, "days": 0}, {"n": 5, "attachment_ratio": 1.5}]
)
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="need n >= 0"):
        generate_mailbox(end=END, **kwargs)


def test_message_ids_are_unique_and_match_the_header(mailbox, parsed) -> None:
    ids = [m.message_id for m in mailbox]
    assert len(set(ids)) == len(ids)
    assert all(msg["Message-ID"] == f"<{m.message_id}>" for m, msg in zip(mailbox, parsed))
    other_seed = {m.message_id for m in generate_mailbox(200, end=END, seed=4)}
    assert not other_seed & set(ids)


def test_raw_bytes_use_crlf_and_short_lines(mailbox) -> None:
    for m in mailbox:
        assert b"\n" not in m.raw.replace(b"\r\n", b"") and b"\r" not in m.raw.replace(b"\r\n", b"")
        assert max(len(line) for line in m.raw.split(b"\r\n")) <= 998  # RFC 5322 2.1.1
        head = m.raw.split(b"\r\n\r\n", 1)[0]
        assert head.isascii()


def test_every_message_parses_without_defects(parsed) -> None:
    for msg in parsed:
        for name in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
            assert msg[name], name
        for part in msg.walk():
            assert not part.defects, (msg["Message-ID"], part.defects)
            for name, value in part.items():
                assert not value.defects, (msg["Message-ID"], name, value.defects)
            if not part.is_multipart():
                assert part.get_content()  # decodes with its charset and transfer encoding


def test_date_header_is_close_to_internaldate_with_some_offsets(mailbox, parsed) -> None:
    offsets = Counter()
    for m, msg in zip(mailbox, parsed):
        sent = parsedate_to_datetime(msg["Date"])
        assert timedelta(0) < m.internaldate - sent < timedelta(minutes=15)
        offsets[sent.utcoffset()] += 1
    assert len(offsets) >= 5 and offsets[timedelta(0)] < 0.6 * N


def test_the_mix_by_count(parsed) -> None:
    share = shares(parsed)
    assert 0.36 <= share["text/plain"] <= 0.50  # plain mail and the first message of threads
    assert 0.25 <= share["multipart/alternative"] <= 0.35
    assert 0.12 <= share["newsletter"] <= 0.18
    assert 0.03 <= share["attachment"] <= 0.07
    assert 0.05 <= share["reply"] <= 0.12


def test_attachment_ratio_sets_the_share_of_attachment_mail() -> None:
    def share_of(ratio: float) -> float:
        box = generate_mailbox(200, end=END, seed=9, attachment_ratio=ratio)
        heads = [m.raw.split(b"\r\n\r\n", 1)[0] for m in box]
        return sum(b"Content-Type: multipart/mixed" in head for head in heads) / len(box)

    assert share_of(0.0) == 0.0
    assert share_of(1.0) == 1.0
    assert 0.15 <= share_of(0.25) <= 0.35


def test_newsletters_look_like_newsletters(parsed) -> None:
    letters = [msg for msg in parsed if kind(msg) == "newsletter"]
    for msg in letters:
        html = msg.get_body(("html",)).get_content()
        assert (
            msg["List-Unsubscribe"].startswith("<https://") and "mailto:" in msg["List-Unsubscribe"]
        )
        assert re.match(r"\[[^]]+\] ", msg["Subject"])
        assert msg.get_body(("plain",)) is None
        assert "<style" in html and "<table" in html and 'style="' in html
        assert re.search(r'<img src="[^"]+" width="1" height="1"', html)  # tracking pixel
        links = re.findall(r'href="(https://click\.[^"]+)"', html)
        assert len(links) >= 8 and min(len(link) for link in links) > 150
    sizes = [len(msg.as_bytes()) for msg in letters]
    assert 10_000 <= sum(sizes) / len(sizes) <= 20_000


def test_attachments_are_large_and_some_names_use_rfc2231(mailbox, parsed) -> None:
    files = [part for msg in parsed for part in msg.iter_attachments()]
    assert files and all(20 * 1024 <= len(part.get_content()) <= 500 * 1024 for part in files)
    assert {part.get_content_type() for part in files} >= {"application/pdf", "image/jpeg"}
    names = [part.get_filename() for part in files]
    assert all(names) and any(not name.isascii() for name in names)
    assert any(b"filename*=utf-8''" in m.raw for m in mailbox)  # RFC 2231 section 4


def test_pdf_attachments_have_text_to_search(parsed) -> None:
    pdfs = [
        part
        for msg in parsed
        for part in msg.iter_attachments()
        if part.get_content_type() == "application/pdf"
    ]
    for part in pdfs[:5]:
        result = extract(Job(part.get_filename(), "pdf", part.get_content()), ExtractLimits())
        assert result.defects == [] and "Amount due:" in result.text and "EUR" in result.text


def test_threads_reference_earlier_messages_and_quote_them(mailbox, parsed) -> None:
    seen: set[str] = set()
    replies = 0
    for m, msg in zip(mailbox, parsed):
        if msg["In-Reply-To"]:
            replies += 1
            references = msg["References"].split()
            assert references[-1] == msg["In-Reply-To"]
            assert {ref.strip("<>") for ref in references} <= seen
            assert msg["Subject"].startswith("Re: ")
            body = plain_text(msg)
            assert re.search(r"^On \w{3}, \d{1,2} \w{3} \d{4} at \d\d:\d\d, .+ wrote:$", body, re.M)
            assert "\n> " in body
        seen.add(m.message_id)
    assert replies >= 50
    depths = Counter(len(msg["References"].split()) for msg in parsed if msg["References"])
    assert max(depths) >= 4


def test_signatures_and_phone_footers(parsed) -> None:
    bodies = [plain_text(msg) for msg in parsed if kind(msg) == "reply"]
    assert sum("\n-- \n" in body for body in bodies) > len(bodies) / 2
    assert any(
        body.startswith(("Sent from my iPhone",)) or "\nSent from my iPhone\n" in body
        for body in bodies
    )


def test_non_ascii_headers_and_bodies(mailbox, parsed) -> None:
    encoded = [m for m in mailbox if b"=?" in m.raw.split(b"\r\n\r\n", 1)[0]]
    assert 0.10 <= len(encoded) / N <= 0.22
    subjects = "".join(msg["Subject"] for msg in parsed)
    for sample in ("ü", "é", "の", "项目", "Счёт"):
        assert sample in subjects or any(sample in str(msg["From"]) for msg in parsed), sample
    bodies = Counter(
        (part.get_content_charset(), part["Content-Transfer-Encoding"])
        for msg in parsed
        for part in msg.walk()
        if part.get_content_maintype() == "text"
    )
    assert {
        ("utf-8", "quoted-printable"),
        ("utf-8", "base64"),
        ("utf-8", "8bit"),
        ("iso-8859-1", "quoted-printable"),
    } <= set(bodies)


def test_text_carries_searchable_business_words(parsed) -> None:
    text = "\n".join(plain_text(msg) for msg in parsed[:300])
    assert re.search(r"\bINV-2026-\d{5}\b", text)
    assert re.search(r"\bPO-\d{5}\b", text)
    for word in ("invoice", "meeting", "Atlas", "Orion", "budget"):
        assert word in text or word.lower() in text.lower(), word


def test_sizes_are_plausible(mailbox, parsed) -> None:
    average = sum(len(m.raw) for m in mailbox) / N
    assert 10_000 <= average <= 24_000  # ~16 KB, most of it in the few attachments
    plain = [len(m.raw) for m, msg in zip(mailbox, parsed) if kind(msg) == "text/plain"]
    assert 2_000 <= sum(plain) / len(plain) <= 4_000


def test_about_a_tenth_is_archived(mailbox) -> None:
    folders = Counter(m.folder for m in mailbox)
    assert set(folders) == {"INBOX", "Archive"}
    assert 0.07 <= folders["Archive"] / N <= 0.13
