"""From parsed messages to their attachments' text and defects, through the real worker pool."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

import pytest

from mail_pipeline.extract.kinds import ExtractLimits
from mail_pipeline.extract.messages import extract_texts
from mail_pipeline.extract.pool import ExtractionPool
from mail_pipeline.message.parse import attachment_payloads, parse_message
from mail_pipeline_tests.attachment_files import (
    docx,
    mail_with_attachments,
    pdf,
    xlsx,
    zip_bomb_docx,
)

WHEN = datetime(2026, 11, 11, 9, tzinfo=UTC)
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def pool():
    with ExtractionPool(ExtractLimits(), workers=2) as pool:
        yield pool


def run(pool, *raws: bytes):
    return extract_texts([(parse_message(raw), raw) for raw in raws], pool)


def test_payloads_line_up_with_the_parsed_attachments():
    raw = mail_with_attachments(
        "m",
        WHEN,
        "Files",
        "See attached.",
        [
            ("a.pdf", PDF, pdf("alpha")),
            ("photo.jpg", "image/jpeg", b"\xff\xd8\xff"),
            ("b.csv", "text/csv", b"x,y\n"),
        ],
    )
    parsed, payloads = parse_message(raw), attachment_payloads(raw)
    assert [a for a, _, _ in payloads] == parsed.attachments
    assert [data for _, data, _ in payloads][1:] == [b"\xff\xd8\xff", b"x,y\n"]


def test_hostile_attachments_leave_defects_and_the_others_text(pool):
    raw = mail_with_attachments(
        "m",
        WHEN,
        "Quarter close",
        "Files for the quarter close.",
        [
            ("broken.pdf", PDF, pdf("never read")[:400]),
            ("schedule.xlsx", "application/octet-stream", xlsx([["Close books", "5 Jan"]])),
            ("long.pdf", PDF, pdf(*[f"Page {n} of the ledger." for n in range(1, 201)])),
            ("report.docx", DOCX, zip_bomb_docx()),
            ("summary.docx", DOCX, docx("Revenue grew 12 percent.")),
            ("logo.png", "image/png", b"\x89PNG\r\n"),
        ],
    )
    [out] = run(pool, raw)
    texts = {t["name"]: t["text"] for t in out.texts}
    assert set(texts) == {"schedule.xlsx", "long.pdf", "summary.docx"}
    assert (
        texts["schedule.xlsx"] == "Close books\t5 Jan"
        and texts["summary.docx"] == "Revenue grew 12 percent."
    )
    assert "Page 100 of the ledger." in texts["long.pdf"] and "Page 101 " not in texts["long.pdf"]
    assert [t["index"] for t in out.texts] == [1, 2, 4]
    assert len(out.defects) == 3
    assert out.defects[0].startswith("attachment:broken.pdf: unreadable (")
    assert out.defects[1] == "attachment:long.pdf: page limit (read 100 of 200 pages)"
    assert out.defects[2].startswith("attachment:report.docx: zip bomb refused (")


def test_oversized_and_unnamed_attachments(pool):
    raw = mail_with_attachments(
        "m", WHEN, "Big", "Big file.", [("big.txt", "text/plain", b"word " * 3000)]
    )
    unnamed = mail_with_attachments(
        "n", WHEN, "Scan", "Scan.", [(None, PDF, pdf("Scanned delivery note 7781."))]
    )
    with ExtractionPool(ExtractLimits(max_bytes=10_000)) as small:
        [big, scan] = extract_texts([(parse_message(r), r) for r in (raw, unnamed)], small)
    assert big.texts == [] and big.defects == [
        "attachment:big.txt: over the size limit (15000 bytes > 10000)"
    ]
    assert scan.texts == [
        {"index": 0, "name": "unnamed application/pdf", "text": "Scanned delivery note 7781."}
    ]


def test_messages_without_readable_attachments_cost_no_worker():
    plain = mail_with_attachments(
        "p", WHEN, "Photo", "A photo.", [("photo.jpg", "image/jpeg", b"\xff\xd8")]
    )
    with ExtractionPool() as fresh:
        [out] = extract_texts([(parse_message(plain), plain)], fresh)
        assert fresh._idle == []
    assert out.texts == [] and out.defects == []


def test_the_same_file_in_two_messages_is_read_once(pool):
    data = pdf("Shared contract text.")
    first = mail_with_attachments("a", WHEN, "One", "One.", [("contract.pdf", PDF, data)])
    second = mail_with_attachments("b", WHEN, "Two", "Two.", [("contract-copy.pdf", PDF, data)])
    calls = []
    original = pool.run
    pool.run = lambda jobs: calls.append(len(jobs)) or original(jobs)
    try:
        outs = run(pool, first, second)
    finally:
        del pool.run
    assert calls == [1]
    assert [o.texts[0]["name"] for o in outs] == ["contract.pdf", "contract-copy.pdf"]
    assert all(o.texts[0]["text"] == "Shared contract text." for o in outs)


def test_files_inside_a_forwarded_message_are_read(pool):
    inner = mail_with_attachments(
        "inner",
        WHEN,
        "Offer",
        "See the offer.",
        [("offer.pdf", PDF, pdf("Offer valid until June."))],
    )
    outer = message_from_bytes(
        mail_with_attachments("outer", WHEN, "Fwd: Offer", "FYI, below.", []), policy=default
    )
    outer.add_attachment(message_from_bytes(inner, policy=default))
    raw = outer.as_bytes()
    [out] = run(pool, raw)
    kinds = [a.content_type for a in parse_message(raw).attachments]
    assert kinds == ["message/rfc822", "application/pdf"]
    assert (
        out.texts == [{"index": 1, "name": "offer.pdf", "text": "Offer valid until June."}]
        and out.defects == []
    )


def test_a_named_inline_html_body_is_not_read_again_as_an_attachment(pool):
    """Apple Mail names the only text part ("Message.html"): it is the body, so not an attachment."""
    raw = (
        b"Message-ID: <named@example.test>\r\nFrom: a@example.test\r\nSubject: Report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b'Content-Type: text/html; name="Message.html"\r\nContent-Disposition: inline; filename="Message.html"\r\n\r\n'
        b'<p>Quarterly numbers attached.</p>\r\n--b\r\nContent-Type: text/csv; name="q3.csv"\r\n'
        b'Content-Disposition: attachment; filename="q3.csv"\r\n\r\nregion,revenue\r\nnorth,120\r\n--b--\r\n'
    )
    parsed = parse_message(raw)
    assert parsed.body_source == "text/html" and [a.filename for a in parsed.attachments] == [
        "q3.csv"
    ]
    assert [a for a, _, _ in attachment_payloads(raw)] == parsed.attachments
    [out] = run(pool, raw)
    assert out.texts == [{"index": 0, "name": "q3.csv", "text": "region,revenue\nnorth,120"}]


def test_an_email_keeps_at_most_max_email_chars_of_attachment_text():
    files = [
        (f"part{n}.txt", "text/plain", (f"file {n} " * 20).encode()) for n in range(4)
    ]  # 140 characters each
    raw = mail_with_attachments("many", WHEN, "Many", "Many files.", files)
    with ExtractionPool(ExtractLimits(max_email_chars=300)) as small:
        [out] = extract_texts([(parse_message(raw), raw)], small)
    assert [(t["name"], len(t["text"])) for t in out.texts] == [
        ("part0.txt", 139),
        ("part1.txt", 139),
        ("part2.txt", 22),
    ]
    assert out.defects == [
        "attachment:part2.txt: text cut at the email's limit of 300 characters",
        "attachment:part3.txt: not kept (the email's attachments passed 300 characters)",
    ]
