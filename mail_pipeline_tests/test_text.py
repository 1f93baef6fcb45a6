"""Charset decoding, RFC 2047 headers, subjects, HTML to text and search-text cleaning."""

from __future__ import annotations

import re
import time

import pytest

from mail_pipeline.message.text import (
    clean_text,
    decode_bytes,
    decode_header_value,
    has_reply_prefix,
    html_to_text,
    normalize_subject,
)


@pytest.mark.parametrize(
    ("data", "charset", "text", "defect"),
    [
        ("café".encode(), "utf-8", "café", None),
        ("café".encode("latin-1"), "utf-8", "café", "charset_fallback:cp1252"),
        ("5€".encode("cp1252"), "iso-8859-1", "5€", None),  # latin-1 label means cp1252
        ("中文".encode("gbk"), "gb2312", "中文", None),
        ("①".encode("cp932"), "shift_jis", "①", None),  # a Microsoft extension to Shift_JIS
        ("café".encode(), None, "café", "charset_fallback:utf-8"),  # no label: us-ascii
        (b"plain", None, "plain", None),
        ("café".encode(), "no-such-charset", "café", "charset_fallback:utf-8"),
        (b"\x81\x8d", "utf-8", "\x81\x8d", "charset_fallback:latin-1"),  # undefined in cp1252
        ("日本".encode("iso-2022-jp"), "ISO-2022-JP", "日本", None),
        (b"", "utf-8", "", None),
    ],
)
def test_decode_bytes_falls_back_and_says_so(data, charset, text, defect):
    assert decode_bytes(data, charset) == (text, defect)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("=?UTF-8?B?UHLDvGZ1bmcg4pyTIOWujOS6hg==?=", "Prüfung ✓ 完了"),
        ("=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"),
        ("=?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+JEckORsoQg==?=", "日本語の件名です"),
        ("=?Shift_JIS?B?ie+LY4LMi2OOlphe?=", "会議の議事録"),
        ("=?gb2312?B?1tDOxNPKvP7W98zi?=", "中文邮件主题"),
        # one character split across two words and two folded lines
        ("=?utf-8?b?44Om44OL4w==?=\r\n =?utf-8?b?grPjg7zjg4k=?=", "ユニコード"),
        ("Re: =?utf-8?q?caf=C3=A9?= and =?utf-8?q?cr=C3=A8me?= today", "Re: café and crème today"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between words is dropped
        ("=?utf-8?q?a?= x =?iso-8859-1?q?=E9?=", "a x é"),
        ("=?utf-8*en?q?hello?=", "hello"),  # RFC 2231 language suffix
        ("=?utf-8?b?bm8gcGFkZGluZw?=", "no padding"),
        ("=?unknown-8bit?q?caf=E9?=", "café"),
        ("Gr\udcc3\udcbc\udcc3\udc9fe", "Grüße"),  # raw 8-bit UTF-8 as BytesParser keeps it
        ("Ren\udce9", "René"),  # raw 8-bit latin-1
        ("  many \r\n\tspaces  ", "many spaces"),
        ("", ""),
    ],
)
def test_decode_header_value(raw, decoded):
    assert decode_header_value(raw) == decoded


@pytest.mark.parametrize(
    ("subject", "normalized", "is_reply"),
    [
        ("Re: Budget", "budget", True),
        ("RE: RE: re: Budget", "budget", True),
        ("Re[2]: Budget", "budget", True),
        ("Fwd: Re: Budget", "budget", True),
        ("Fw: Budget", "budget", False),
        ("AW: WG: Budget", "budget", True),
        ("SV: Budget", "budget", True),
        ("VS: Budget", "budget", True),
        ("Antw: Budget", "budget", True),
        ("[dev] Re: [dev] Budget  Q3", "budget q3", True),
        ("Review: the plan", "review: the plan", False),
        ("Budget [#1234]", "budget [#1234]", False),
        ("", "", False),
    ],
)
def test_subject_prefixes(subject, normalized, is_reply):
    assert normalize_subject(subject) == normalized
    assert has_reply_prefix(subject) is is_reply


TAG = re.compile(r"</?(?:html|head|body|p|b|a|img|table|tr|td|th|script|style|div)\b[^>]*>", re.I)


@pytest.mark.parametrize(
    ("html", "present", "absent"),
    [
        ("<p>Hello <b>world</b> &amp; you</p>", ["Hello world & you"], ["**"]),
        (
            '<p>see <a href="https://example.com/track?id=1">the offer</a></p>',
            ["the offer"],
            ["example.com"],
        ),
        (
            "<style>p{color:red}</style><script>alert(1)</script><p>text</p>",
            ["text"],
            ["color", "alert"],
        ),
        (
            '<img src="https://t.example.com/p.gif" width="1" height="1"><p>x</p>',
            ["x"],
            ["t.example.com"],
        ),
        ('<p>a</p><img src="data:image/png;base64,' + "A" * 200 + '">', ["a"], ["AAAA", "data:"]),
        ("<table><tr><td>Widget</td><td>5 €</td></tr></table>", ["Widget", "5 €"], []),
        ("<!-- hidden --><p>shown</p>", ["shown"], ["hidden"]),
        ("<p>unclosed <script>var x = 1;" + "<script>" * 1000, ["unclosed"], ["var x"]),
        ("<head><title>T</title></head><p>1. item - dash</p>", ["1. item - dash"], ["\\"]),
        ("<blockquote>quoted</blockquote>", ["> quoted"], []),
    ],
)
def test_html_to_text(html, present, absent):
    text = html_to_text(html)
    assert not TAG.search(text)
    for fragment in present:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text


@pytest.mark.parametrize(
    "hostile",
    [
        '<a "' * 50_000,
        '<a b="<" ' * 20_000,
        "<img " * 50_000,
        "<script" * 50_000,
        "<!--" * 50_000,
        "&" * 200_000,
        "</" * 100_000,
        "<ul><li>" * 20_000,
        "<blockquote>" * 20_000,
    ],
    ids=[
        "unclosed-quote",
        "lt-in-quote",
        "img",
        "script",
        "comment",
        "amp",
        "end",
        "lists",
        "quotes",
    ],
)
def test_html_to_text_stays_linear_on_hostile_markup(hostile):
    # Before sanitizing, 80 KB of '<a "' took html2text 42 s and nested lists grew quadratically.
    started = time.perf_counter()
    text = html_to_text(hostile)
    assert time.perf_counter() - started < 3
    assert len(text) < 10 * len(hostile)  # nesting is capped, so output grows linearly


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb\rc", "a\nb\nc"),
        ("x\x00y\x07z\tw", "xyz\tw"),
        ("a  \n\n\n\n\nb", "a\n\nb"),
        ("\n\n  body  \n\n", "body"),
    ],
)
def test_clean_text(text, expected):
    assert clean_text(text) == expected
