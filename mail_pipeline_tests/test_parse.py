"""MIME parsing: one row per awkward message, every row checked for the same invariants."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime

import pytest

from mail_pipeline.message import mime, parse
from mail_pipeline.message.parse import (
    Address,
    ParsedEmail,
    ParseLimits,
    content_key,
    email_id,
    message_key,
    parse_message,
)
from mail_pipeline_tests import mime_samples as s

HTML_TAG = re.compile(
    r"</?(?:html|head|body|p|b|i|a|img|table|tr|td|th|script|style|div|span|br|font)\b[^>]*>", re.I
)
ENCODED_WORD = re.compile(r"=\?[\w.:-]+\?[bBqQ]\?")
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{60,}")
UTC = UTC


def att(filename, content_type, inline=False):
    return (filename, content_type, inline)


# (name, raw, expected field values, body fragments, defects that must be present)
CASES = [
    ("subject_utf8", s.SUBJECT_UTF8, {"subject": "Prüfung ✓ 完了"}, ["Hello Bob."], []),
    ("subject_latin1", s.SUBJECT_LATIN1, {"subject": "Café crème brûlée"}, [], []),
    ("subject_iso2022jp", s.SUBJECT_ISO2022JP, {"subject": "日本語の件名です"}, [], []),
    ("subject_shift_jis", s.SUBJECT_SHIFT_JIS, {"subject": "会議の議事録"}, [], []),
    ("subject_gb2312", s.SUBJECT_GB2312, {"subject": "中文邮件主题"}, [], []),
    (
        "subject_split_mixed",
        s.SUBJECT_SPLIT_MIXED,
        {
            "subject": "Re: [team] ユニコード test and À bientôt",
            "subject_normalized": "ユニコード test and à bientôt",
        },
        [],
        [],
    ),
    (
        "body_latin1_labelled_utf8",
        s.BODY_LATIN1_LABELLED_UTF8,
        {"body_source": "text/plain"},
        ["Café crème, 5€"],
        ["charset_fallback:cp1252"],
    ),
    ("body_no_charset", s.BODY_NO_CHARSET_UTF8, {}, ["Grüße aus Köln"], ["charset_fallback:utf-8"]),
    (
        "body_no_content_type",
        s.BODY_NO_CONTENT_TYPE_ASCII,
        {"defects": []},
        ["Just ascii text."],
        [],
    ),
    (
        "raw_8bit_headers",
        s.RAW_8BIT_HEADERS,
        {
            "subject": "Grüße aus Köln",
            "from_name": "Jörg Müller",
            "from_address": "jm@beispiel.de",
            "to": [Address("René", "rene@example.fr")],
        },
        ["Hallo."],
        [],
    ),
    (
        "missing_date",
        s.MISSING_DATE,
        {"sent_at": None, "message_id": "nodate@example.com"},
        [],
        ["missing_date"],
    ),
    ("bad_date", s.BAD_DATE, {"sent_at": None}, [], ["bad_date"]),
    (
        "missing_message_id",
        s.MISSING_MESSAGE_ID,
        {"message_id_synthetic": True, "sent_at": datetime(2026, 3, 3, 14, 5, tzinfo=UTC)},
        [],
        ["missing_message_id"],
    ),
    ("missing_from", s.MISSING_FROM, {"from_name": "", "from_address": ""}, [], ["missing_from"]),
    (
        "missing_all",
        s.MISSING_ALL,
        {"message_id_synthetic": True, "from_address": "", "sent_at": None},
        ["body only"],
        ["missing_from", "missing_message_id", "missing_date"],
    ),
    (
        "duplicate_headers",
        s.DUPLICATE_HEADERS,
        {
            "subject": "first",
            "message_id": "dup@example.com",
            "to": [Address("", "one@example.com"), Address("", "two@example.com")],
        },
        [],
        ["duplicate_header:subject", "duplicate_header:message-id"],
    ),
    (
        "nested_alternative",
        s.NESTED_ALTERNATIVE,
        {
            "body_source": "text/plain",
            "attachments": [
                att(None, "image/png", inline=True),
                att("report.pdf", "application/pdf"),
            ],
        },
        ["Plain version with café and a soft break."],
        [],
    ),
    ("html_meta_charset", s.HTML_META_CHARSET, {"defects": []}, ["Price: 5€ & café"], []),
    (
        "html_only",
        s.HTML_ONLY,
        {"body_source": "text/html"},
        ["Dear reader, see our offer & more.", "Widget", "€5"],
        [],
    ),
    ("base64_body", s.BASE64_BODY, {}, ["Grüße aus Köln, schöne Tage!", "Jörg"], []),
    ("quoted_printable_body", s.QP_BODY, {}, ["Schöne Grüße", "soft line break here."], []),
    (
        "iso2022jp_body",
        s.JAPANESE_BODY,
        {"subject": "日本語の件名です"},
        ["日本語の本文です。"],
        [],
    ),
    (
        "rfc2231_filenames",
        s.RFC2231_FILENAMES,
        {
            "attachments": [
                att("€ Übersicht 2026.pdf", "application/pdf"),
                att("Sehr langer Dateiname für Notizen.txt", "text/plain"),
                att("résumé.docx", "application/octet-stream"),
            ]
        },
        ["See attached."],
        [],
    ),
    (
        "message_rfc822",
        s.FORWARDED_RFC822,
        {
            "subject_normalized": "original",
            "attachments": [att(None, "message/rfc822"), att("photo.jpg", "image/jpeg")],
        },
        ["Forwarding this."],
        [],
    ),
    (
        "calendar_invite",
        s.CALENDAR_INVITE,
        {"attachments": [att(None, "text/calendar"), att("invite.ics", "application/ics")]},
        ["You have been invited to Planning"],
        [],
    ),
    (
        "delivery_status_bounce",
        s.BOUNCE,
        {
            "from_address": "MAILER-DAEMON@mx.example.com",
            "attachments": [att(None, "message/delivery-status"), att(None, "message/rfc822")],
        },
        ["could not", "550 5.1.1 User unknown"],
        [],
    ),
    ("long_lines", s.LONG_LINES, {}, ["word word", "x-y," * 2_500], []),
    ("long_html_line", s.LONG_HTML_LINE, {"body_source": "text/html"}, ["lorem ipsum lorem"], []),
    ("nul_bytes", s.NUL_BYTES, {"subject": "nul bytes"}, ["beforeafter", "linetwo"], []),
    (
        "truncated_mid_part",
        s.TRUNCATED,
        {"attachments": [att("big.pdf", "application/pdf")]},
        ["The start survives."],
        ["CloseBoundaryNotFoundDefect"],
    ),
    ("nested_200_levels", s.nested_multipart(200), {"subject": "deep"}, [], ["depth_limit"]),
    ("nested_5000_levels", s.nested_multipart(5000), {"subject": "deep"}, [], ["depth_limit"]),
    ("rfc822_chain_3000", s.nested_rfc822(3000), {"subject": "chain"}, [], ["depth_limit"]),
    ("many_parts", s.many_parts(2000), {}, ["part 0", "part 400"], ["parts_limit"]),
    (
        "rfc5322_comments",
        s.RFC5322_COMMENTS,
        {
            "from_name": "Pete",
            "from_address": "pete@silly.test",
            "cc": [],
            "to": [
                Address("Chris Jones", "c@public.example"),
                Address("", "joe@example.org"),
                Address("John", "jdoe@one.test"),
            ],
            "sent_at": datetime(1969, 2, 14, 3, 2, tzinfo=UTC),
        },
        ["Testing."],
        [],
    ),
    (
        "comment_via",
        s.COMMENT_VIA,
        {
            "from_name": "Jane Doe",
            "from_address": "drive-shares-noreply@google.com",
            "reply_to": [Address("Jane Doe", "jane.doe@example.com")],
            "to": [Address("Team", "team@example.com")],
        },
        [],
        [],
    ),
    (
        "from_two_bare_addresses",
        s.FROM_TWO_BARE,
        {
            "from_name": "",
            "from_address": "alerts@monitor.example.com",
            "to": [Address("Support Team", "support@helpdesk.example")],
        },
        [],
        ["malformed_address:from", "malformed_address:to"],
    ),
    (
        "raw_utf8_filename",
        s.RAW_UTF8_FILENAME,
        {
            "attachments": [
                att(
                    "Präsentation März.pptx",
                    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                )
            ]
        },
        ["Slides attached."],
        [],
    ),
    (
        "folded_boundary",
        s.FOLDED_BOUNDARY,
        {"body_source": "text/plain", "attachments": [att("q1.pdf", "application/pdf")]},
        ["The quarterly figures are attached."],
        ["folded_boundary"],
    ),
    (
        "named_inline_html",
        s.NAMED_INLINE_HTML,
        {"body_source": "text/html", "attachments": [att("plan.png", "image/png", inline=True)]},
        ["The board approved the new office lease."],
        [],
    ),
]


@pytest.mark.parametrize(("raw", "fields", "body", "defects"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])  # fmt: skip
def test_parse_message(raw, fields, body, defects):
    parsed = parse_message(raw)

    assert isinstance(parsed, ParsedEmail)
    assert re.fullmatch(r"[0-9a-f]{24}", email_id(parsed.message_id, content_key(parsed)))
    assert "<" not in parsed.message_id and ">" not in parsed.message_id
    texts = [parsed.body_text, parsed.search_text, parsed.subject, parsed.from_name]
    texts += [a.filename or "" for a in parsed.attachments]
    assert not HTML_TAG.search(parsed.body_text)
    assert not BASE64_RUN.search(parsed.body_text)
    for text in texts:
        assert not ENCODED_WORD.search(text)
        assert "\ufffd" not in text
        assert "\x00" not in text
    assert parsed.sent_at is None or parsed.sent_at.utcoffset().total_seconds() == 0

    for name, expected in fields.items():
        actual = getattr(parsed, name)
        if name == "attachments":
            actual = [(a.filename, a.content_type, a.inline) for a in actual]
        assert actual == expected, name
    for fragment in body:
        assert fragment in parsed.body_text
    for defect in defects:
        assert defect in parsed.defects


def test_headers_and_threading_fields():
    raw = s.crlf(
        b"From: =?utf-8?q?J=C3=B6rg?= <Joerg@Example.DE>\n"
        b'To: "Doe, Jane" <jane@X.com>, bob@example.org\nCc: undisclosed-recipients:;\n'
        b"Reply-To: list@Lists.Example.org\nList-Id: Dev talk <dev.lists.Example.ORG>\n"
        b"Subject: RE: [dev] Fwd: plan\nDate: Tue, 03 Mar 2026 23:30:00 -0500\n"
        b"Message-ID: <Abc.Def@Example.COM>\nIn-Reply-To: <parent@x.com> (message of Monday)\n"
        b"References: <root@x.com>\n <parent@x.com> <root@x.com> <Abc.Def@example.com>\n\n"
        b"Reply text.\n\nOn Tue, Bob wrote:\n> quoted\n"
    )
    parsed = parse_message(raw)
    assert parsed.message_id == "Abc.Def@example.com"
    assert parsed.in_reply_to == "parent@x.com"
    assert parsed.references == ["root@x.com", "parent@x.com"]
    assert parsed.thread_root == "root@x.com"
    assert (parsed.from_name, parsed.from_address) == ("Jörg", "Joerg@example.de")
    assert parsed.to == [Address("Doe, Jane", "jane@x.com"), Address("", "bob@example.org")]
    assert parsed.cc == []
    assert parsed.reply_to == [Address("", "list@lists.example.org")]
    assert parsed.list_id == "dev.lists.example.org"
    assert parsed.subject_normalized == "plan"
    assert parse.is_reply_subject(parsed.subject)
    assert parsed.sent_at == datetime(2026, 3, 4, 4, 30, tzinfo=UTC)
    assert parsed.search_text == "Reply text."


def test_in_reply_to_only_sets_root():
    raw = s.crlf(b"From: a@x.com\nMessage-ID: <c@x.com>\nIn-Reply-To: <b@x.com>\n\nhi\n")
    assert parse_message(raw).thread_root == "b@x.com"
    assert parse_message(s.MISSING_DATE).thread_root == "nodate@example.com"


def test_synthetic_message_id_is_stable_and_ignores_trace_headers():
    first, again = parse_message(s.MISSING_ALL), parse_message(s.MISSING_ALL)
    assert first.message_id == again.message_id
    assert first.message_id.startswith("synthetic-") and first.message_id.endswith(
        "@mail-pipeline.invalid"
    )
    assert first.thread_root == first.message_id
    # The copy a server keeps in another folder carries other trace headers: the same message.
    copy = parse_message(b"Received: from mx2\r\nX-Keywords: $Archived\r\n" + s.MISSING_ALL)
    assert copy.message_id == first.message_id
    other = parse_message(s.MISSING_ALL.replace(b"body only", b"another body"))
    assert other.message_id != first.message_id
    garbage = {parse_message(raw).message_id for raw in (b"", b"\x00" * 100, b"Subject")}
    assert len(garbage) == 3  # nothing to go by but the bytes


def test_attachment_size_and_hash_are_of_decoded_bytes():
    (png, pdf) = parse_message(s.NESTED_ALTERNATIVE).attachments
    assert pdf.size == len(b"%PDF-1.4\n")
    assert pdf.sha256 == hashlib.sha256(b"%PDF-1.4\n").hexdigest()
    assert png.size == 32


def test_part_size_limit_truncates_text_and_drops_hash():
    limits = ParseLimits(max_part_bytes=100)
    parsed = parse_message(s.plain(b"big", b"a" * 500 + b"\n"), limits)
    assert parsed.body_text == "a" * 100
    assert "part_size_limit" in parsed.defects
    pdf = parse_message(s.NESTED_ALTERNATIVE, ParseLimits(max_part_bytes=4)).attachments[1]
    assert (pdf.size, pdf.sha256) == (9, "")  # size estimated from the base64 length
    pdf = parse_message(s.NESTED_ALTERNATIVE, ParseLimits(max_part_bytes=8)).attachments[1]
    assert (pdf.size, pdf.sha256) == (9, "")  # decoded, then found over the limit


def test_wide_shallow_mail_passes_the_limits():
    parsed = parse_message(s.digest(60))
    assert not {"depth_limit", "parts_limit"} & set(parsed.defects)
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"] * 60
    assert parsed.body_text == "Today's digest."


def test_text_limit():
    parsed = parse_message(s.LONG_LINES, ParseLimits(max_text_chars=50))
    assert len(parsed.body_text) <= 50
    assert "text_limit" in parsed.defects


@pytest.mark.parametrize(
    "raw", [s.nested_multipart(20_000), s.many_parts(100_000), s.nested_rfc822(800)]
)
def test_hostile_structure_is_bounded_in_time(raw):
    started = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - started < 5
    assert {"depth_limit", "parts_limit"} & set(parsed.defects)


def test_unexpected_error_gives_a_record(monkeypatch):
    def explode(*args):
        raise ValueError("boom")

    monkeypatch.setattr(mime, "walk", explode)
    parsed = parse_message(s.SUBJECT_UTF8)
    assert parsed.defects == ["unparseable:ValueError"]
    assert parsed.message_id == "sample-1@example.com"  # headers that could be read are kept
    assert (parsed.body_text, parsed.body_source) == ("", "none")


@pytest.mark.parametrize("raw", [b"", b"\x00" * 100, b"\xff\xfe garbage", b"Subject", b"\n\n\n"])
def test_garbage_never_raises(raw):
    parsed = parse_message(raw)
    assert parsed.message_id_synthetic


def test_message_key_and_email_id():
    assert message_key("abc@example.com") == hashlib.sha256(b"abc@example.com").hexdigest()[:24]
    assert (
        email_id("abc@example.com", "k1") == hashlib.sha256(b"abc@example.com\nk1").hexdigest()[:24]
    )
    assert email_id("abc@example.com", "k1") != email_id("abc@example.com", "k2")


@pytest.mark.parametrize(
    ("value", "expected", "malformed"),
    [
        ("Pete (A wonderful) chap <pete@example.com>", [("Pete chap", "pete@example.com")], False),
        ('"Smith (Sales), John" <j@x.com>', [("Smith (Sales), John", "j@x.com")], False),
        ("bob@x.com (Bob (the) Builder)", [("Bob the Builder", "bob@x.com")], False),
        ("=?utf-8?q?J=C3=B6rg?= (Vertrieb) <j@x.de>", [("Jörg", "j@x.de")], False),
        ("team: a@x.com, b@y.com;", [("", "a@x.com"), ("", "b@y.com")], False),
        ("Bob Smith bob@example.com", [("Bob Smith", "bob@example.com")], True),
        ("a@x.com b@y.com", [("", "a@x.com"), ("", "b@y.com")], True),
        ("Bob (Sales <bob@x.com>", [("Bob (Sales", "bob@x.com")], True),  # an unclosed comment
        ("Bob, bob@x.com", [("", "bob@x.com")], True),  # an unquoted comma in the name
        # quoted local parts
        (
            '"john smith"@example.com, Bob <"j s"@x.org>',
            [("", '"john smith"@example.com'), ("Bob", '"j s"@x.org')],
            False,
        ),
        ("<Bob Smith)", [], True),  # nothing that could be an address
    ],
)
def test_address_shapes(value, expected, malformed):
    parsed = parse_message(
        s.crlf(f"From: x@y.com\nTo: {value}\nMessage-ID: <a@b.c>\n\nx\n".encode())
    )
    assert [(a.name, a.address) for a in parsed.to] == expected
    assert ("malformed_address:to" in parsed.defects) is malformed


@pytest.mark.parametrize(("raw", "search_text"), [
    (s.OUTLOOK_HTML_REPLY, "Hi Tom, the numbers are in the sheet.\n\nPriya"),
    (s.GMAIL_HTML_REPLY, "Sounds good.\n\nI will tag the release on Thursday evening."),
], ids=["outlook", "gmail"])  # fmt: skip
def test_html_replies_keep_only_the_authors_text(raw, search_text):
    parsed = parse_message(raw)
    assert parsed.body_source == "text/html"
    assert parsed.search_text == search_text


@pytest.mark.parametrize(("folded", "delimiter"), [
    (b'"----=_Part_12_3456\r\n\t.7890"', b"----=_Part_12_3456.7890"),  # folded for length: the fold goes
    (b'"Apple-Mail\r\n 42"', b"Apple-Mail 42"),  # RFC 5322 unfolding: the space stays
])  # fmt: skip
def test_a_boundary_folded_inside_quotes_takes_the_form_its_delimiters_use(folded, delimiter):
    raw = (
        b"From: a@example.com\r\nMessage-ID: <f@example.com>\r\nContent-Type: multipart/mixed;\r\n boundary="
        + folded
        + b"\r\n\r\n--"
        + delimiter
        + b"\r\nContent-Type: text/plain\r\n\r\nInside the part.\r\n--"
        + delimiter
        + b"--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "Inside the part."
    assert "folded_boundary" in parsed.defects


@pytest.mark.parametrize("name", ["NAMED_INLINE_HTML", "NESTED_ALTERNATIVE", "FORWARDED_RFC822", "CALENDAR_INVITE",
                                  "RAW_UTF8_FILENAME", "FOLDED_BOUNDARY"])  # fmt: skip
def test_leaves_without_text_are_the_attachments_in_order(name):
    # The contract attachment text extraction relies on to pair a part's bytes with its record.
    raw = getattr(s, name)
    leaves, _source, _text = parse.leaves_and_body(
        mime.parse_tree(raw, ParseLimits(), []), ParseLimits(), []
    )
    attachments = parse_message(raw).attachments
    assert [mime.filename(leaf.part) for leaf in leaves if not leaf.text] == [
        a.filename for a in attachments
    ]
    assert [leaf.part.get_content_type() for leaf in leaves if not leaf.text] == [
        a.content_type for a in attachments
    ]


@pytest.mark.parametrize("charset", ["utf-8", "idna", "x-unknown"])
def test_an_8bit_part_over_the_limit_is_cut_whatever_its_charset_name(charset):
    # Sizing the stored payload decodes 8-bit data with the declared charset: idna raises there.
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset="
        + charset.encode()
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + ("caf\u00e9 " * 100).encode()
    )
    parsed = parse_message(raw, ParseLimits(max_part_bytes=100))
    assert "part_size_limit" in parsed.defects and not any(
        d.startswith("unparseable") for d in parsed.defects
    )
    assert len(parsed.body_text) == 100 and parsed.body_text.startswith("caf")
