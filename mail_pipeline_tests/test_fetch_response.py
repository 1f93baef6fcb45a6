"""The FETCH response parser: the shapes Dovecot and pymap send, unsolicited responses, NIL,
quoted strings, literal sizes, clear errors; and agreement with imapclient on both servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mail_pipeline.imap.connection import ImapConfig
from mail_pipeline.imap.fetch_response import FetchParseError, parse_fetch, parse_internaldate
from mail_pipeline.imap.session import ImapSession
from mail_pipeline_tests.mailgen import message

UTC = UTC
BODY = b"Subject: x\r\n\r\nhello\r\n"
ALL_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE", b"FLAGS", b"RFC822.SIZE"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(  # Dovecot: UID first, the literal last
            [
                (
                    b'1 (UID 7 INTERNALDATE "02-Jan-2026 21:59:59 +0000" FLAGS (\\Flagged $Label1) RFC822.SIZE 21 '
                    b"BODY[] {21}",
                    BODY,
                ),
                b")",
            ],
            {
                7: {
                    b"UID": 7,
                    b"INTERNALDATE": utc(2026, 1, 2, 21, 59, 59),
                    b"FLAGS": (b"\\Flagged", b"$Label1"),
                    b"RFC822.SIZE": 21,
                    b"BODY[]": BODY,
                }
            },
            id="dovecot-order",
        ),
        pytest.param(  # pymap: the literal first, UID last
            [
                (b"1 (BODY[] {21}", BODY),
                b' INTERNALDATE "01-Jan-2026 00:00:00 +0000" FLAGS (\\Answered \\Seen) RFC822.SIZE 21 UID 101)',
            ],
            {
                101: {
                    b"BODY[]": BODY,
                    b"INTERNALDATE": utc(2026, 1, 1),
                    b"FLAGS": (b"\\Answered", b"\\Seen"),
                    b"RFC822.SIZE": 21,
                    b"UID": 101,
                }
            },
            id="pymap-order",
        ),
        pytest.param(  # an unsolicited FLAGS update without UID belongs to no requested message
            [
                b"3 (FLAGS (\\Seen))",
                (b"4 (UID 9 BODY[] {21}", BODY),
                b' INTERNALDATE "01-Jan-2026 00:00:00 +0000")',
            ],
            {9: {b"UID": 9, b"BODY[]": BODY, b"INTERNALDATE": utc(2026, 1, 1)}},
            id="unsolicited-without-uid",
        ),
        pytest.param(  # CONDSTORE-style unsolicited update with UID and MODSEQ: kept, without a body
            [b"8 (UID 12 MODSEQ (4711) FLAGS ())"],
            {12: {b"UID": 12, b"MODSEQ": (b"4711",), b"FLAGS": ()}},
            id="unsolicited-with-uid",
        ),
        pytest.param(  # two responses for one UID are merged, the later winning
            [b"5 (UID 3 FLAGS ())", (b"5 (UID 3 FLAGS (\\Seen) BODY[] {21}", BODY), b")"],
            {3: {b"UID": 3, b"FLAGS": (b"\\Seen",), b"BODY[]": BODY}},
            id="merged",
        ),
        pytest.param(
            [b"2 (UID 4 BODY[] NIL INTERNALDATE NIL)"],
            {4: {b"UID": 4, b"BODY[]": None, b"INTERNALDATE": None}},
            id="nil",
        ),
        pytest.param(
            [b'2 (UID 4 FLAGS (\\Seen "a \\"quoted\\" (flag)" "back\\\\slash") BODY[] "inline")'],
            {
                4: {
                    b"UID": 4,
                    b"FLAGS": (b"\\Seen", b'a "quoted" (flag)', b"back\\slash"),
                    b"BODY[]": b"inline",
                }
            },
            id="quoted-strings-with-escapes",
        ),
        pytest.param(  # one response, two literals: imaplib stores one tuple per literal
            [
                (b"6 (UID 8 BODY[HEADER] {12}", b"Subject: x\r\n"),
                (b" BODY[TEXT] {7}", b"hello\r\n"),
                b" RFC822.SIZE 19)",
            ],
            {
                8: {
                    b"UID": 8,
                    b"BODY[HEADER]": b"Subject: x\r\n",
                    b"BODY[TEXT]": b"hello\r\n",
                    b"RFC822.SIZE": 19,
                }
            },
            id="two-literals",
        ),
        pytest.param(
            [(b"1 (uid 2 body[] {0}", b""), b")"],
            {2: {b"UID": 2, b"BODY[]": b""}},
            id="lowercase-empty-literal",
        ),
        pytest.param([b"1 ()"], {}, id="no-items"),
        pytest.param([b"1 ( )"], {}, id="no-items-spaced"),
        pytest.param([None], {}, id="no-fetch-responses"),
    ],
)
def test_parse_fetch(data, expected):
    assert parse_fetch(data) == expected


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(
            [(b"1 (UID 2 BODY[] {22}", BODY), b")"],
            "does not match the data read",
            id="literal-size",
        ),
        pytest.param([(b"1 (UID 2 BODY[] {21}", BODY)], "ends inside a literal", id="truncated"),
        pytest.param([b"1 (UID 2 FLAGS (\\Seen)"], "cannot parse FETCH item", id="unclosed"),
        pytest.param(
            [b"1 (UID 2 FLAGS (\\Seen)) trailing"], "cannot parse FETCH item", id="trailing-garbage"
        ),
        pytest.param([b"1 (UID 2 FLAGS ATOM)"], "cannot parse FETCH item", id="bare-atom-value"),
        pytest.param([b"FETCH (UID 2)"], "not a FETCH response", id="no-sequence-number"),
        pytest.param(
            [b'1 (UID 2 INTERNALDATE "2026-01-02T00:00:00Z")'],
            "cannot parse INTERNALDATE",
            id="bad-date",
        ),
        pytest.param(
            [b'1 (UID 2 INTERNALDATE "02-Foo-2026 00:00:00 +0000")'],
            "cannot parse INTERNALDATE",
            id="bad-month",
        ),
    ],
)
def test_unparseable_responses_raise_a_clear_error(data, error):
    with pytest.raises(FetchParseError, match=error):
        parse_fetch(data)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"10-Nov-2026 23:59:59 +0000", utc(2026, 11, 10, 23, 59, 59)),
        (b"11-Nov-2026 00:00:00 +0000", utc(2026, 11, 11)),
        # the server's zone must not pick the day
        (
            b"12-Nov-2026 01:30:00 +0200",
            utc(2026, 11, 11, 23, 30),
        ),
        (b" 1-Jan-2026 19:00:00 -0500", utc(2026, 1, 2)),
        (b"01-jan-2026 00:00:00 +0530", utc(2025, 12, 31, 18, 30)),
    ],
)
def test_parse_internaldate(value, expected):
    parsed = parse_internaldate(value)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


DATE = b'INTERNALDATE "02-Jan-2026 21:59:59 +0000"'
WANT = {
    7: {
        b"UID": 7,
        b"INTERNALDATE": utc(2026, 1, 2, 21, 59, 59),
        b"FLAGS": (b"\\Seen",),
        b"BODY[]": BODY,
    }
}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            [(b"1 (UID 7 FLAGS (\\Seen) " + DATE + b" BODY[] {21}", BODY), b" )"],
            id="space-before-close",
        ),
        pytest.param(
            [(b"1 (UID 7 FLAGS (\\Seen) " + DATE + b" BODY[] {21}", BODY), b"  )"],
            id="two-spaces-before-close",
        ),
        pytest.param(
            [(b"1 (UID 7  FLAGS (\\Seen)   " + DATE + b"  BODY[]  {21}", BODY), b")"],
            id="runs-of-spaces",
        ),
        pytest.param(
            [(b"1  ( UID 7 FLAGS (\\Seen ) " + DATE + b" BODY[] {21}", BODY), b")"],
            id="spaces-inside-parens",
        ),
        pytest.param(
            [(b"1 (FLAGS (\\Seen) " + DATE + b" BODY[] {21}", BODY), b"UID 7)"],
            id="uid-right-after-literal",
        ),
        pytest.param(
            [(b"1 (BODY[] {21}", BODY), b"FLAGS (\\Seen) " + DATE + b" UID 7 )"],
            id="exchange-and-qq-together",
        ),
    ],
)
def test_whitespace_quirks_of_real_servers(data):
    assert parse_fetch(data, requested={7}) == WANT


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(  # a nested list (BODYSTRUCTURE) is beyond this parser: imapclient reads it
            [(b'1 (UID 7 BODYSTRUCTURE ("text" ("charset" "utf-8")) BODY[] {21}', BODY), b")"],
            {7: {b"UID": 7, b"BODYSTRUCTURE": (b"text", (b"charset", b"utf-8")), b"BODY[]": BODY}},
            id="nested-list",
        ),
        pytest.param(  # a literal inside a list (X-GM-LABELS can be sent so)
            [(b"1 (UID 7 X-LABELS (a {21}", BODY), (b" b) BODY[] {21}", BODY), b" " + DATE + b")"],
            {
                7: {
                    b"UID": 7,
                    b"X-LABELS": (b"a", BODY, b"b"),
                    b"BODY[]": BODY,
                    b"INTERNALDATE": utc(2026, 1, 2, 21, 59, 59),
                }
            },
            id="literal-inside-list",
        ),
    ],
)
def test_responses_beyond_this_parser_go_to_imapclients(data, expected):
    assert parse_fetch(data, requested={7}) == expected


@pytest.mark.parametrize(
    "unsolicited",
    [
        pytest.param([b'3 (FLAGS (\\Seen) X-ODD ((nested) "x"))'], id="odd-shape-without-uid"),
        pytest.param([b"3 (FLAGS (\\Seen) ( garbage"], id="unreadable-without-uid"),
        pytest.param([b"4 (UID 99 FLAGS (\\Deleted) MODSEQ (12))"], id="uid-not-asked-for"),
        pytest.param(
            [b"4 (UID 99 FLAGS (\\Deleted) ((( garbage"], id="unreadable-uid-not-asked-for"
        ),
    ],
)
def test_unsolicited_responses_of_any_shape_are_ignored(unsolicited):
    wanted = [(b"1 (UID 7 FLAGS (\\Seen) " + DATE + b" BODY[] {21}", BODY), b")"]
    assert parse_fetch(unsolicited + wanted + unsolicited, requested={7}) == WANT


def test_a_requested_message_neither_parser_reads_fails_with_both_reasons():
    with pytest.raises(FetchParseError, match=r"cannot parse FETCH item.*imapclient's parser"):
        parse_fetch([b"4 (UID 7 FLAGS (\\Seen) ((( garbage"], requested={7})


def fetch_both_ways(config: ImapConfig, password: str, folder: str) -> tuple[list, list]:
    """The session's messages and imapclient's parse of the same FETCH, as comparable tuples."""
    with ImapSession(config, password) as session:
        session.select(folder)
        uids = sorted(session.client.search(["ALL"]))
        # As a run does: date, size and flags from the metadata FETCH, then the bodies.
        metas = session.fetch_meta(uids)
        ours = [
            (m.uid, m.internaldate, m.flags, m.size, m.raw)
            for m in session.fetch_messages(metas, max_messages=3, max_bytes=10**9)
        ]
        theirs = [
            (
                uid,
                item[b"INTERNALDATE"].astimezone(UTC),
                tuple(f.decode() for f in item[b"FLAGS"]),
                item[b"RFC822.SIZE"],
                item[b"BODY[]"],
            )
            for uid, item in sorted(session.client.fetch(uids, ALL_ITEMS).items())
        ]
    return ours, theirs


@pytest.mark.integration
def test_agrees_with_imapclient_on_dovecot(dovecot):
    when = datetime.fromisoformat("2026-11-12T01:30:00+02:00")
    dovecot.append(
        [("INBOX", message(f"m{i}", when), when + timedelta(seconds=i)) for i in range(7)]
    )
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags([2, 5], [b"\\Flagged", b"$Label1"])
    client.logout()
    config = ImapConfig(host="127.0.0.1", port=dovecot.port, username="alice", security="plain")
    ours, theirs = fetch_both_ways(config, dovecot.users["alice"], "INBOX")
    assert len(ours) == 7 and ours == theirs
    assert ours[1][2] == ("\\Flagged", "$Label1")


@pytest.mark.integration
def test_agrees_with_imapclient_on_the_demo_server():
    from mail_pipeline.demo.server import DEMO_PASSWORD, DEMO_USER, DemoServer

    server = DemoServer().start()
    try:
        config = ImapConfig(
            host="127.0.0.1", port=server.port, username=DEMO_USER, security="plain"
        )
        ours, theirs = fetch_both_ways(config, DEMO_PASSWORD, "INBOX")
    finally:
        server.stop()
    assert ours and ours == theirs


def test_rfc_shaped_responses_never_reach_the_tolerant_regex_or_imapclient(monkeypatch):
    """The happy path stays one strict regex per item (bench/RESULTS.md, fetch section)."""
    from mail_pipeline.imap import fetch_response

    class Untouchable:
        def match(self, *args):
            raise AssertionError("the tolerant regex ran on an RFC-shaped response")

    monkeypatch.setattr(fetch_response, "_LOOSE_ITEM", Untouchable())
    monkeypatch.setattr(fetch_response, "_fallback", Untouchable().match)
    data = [
        (
            b'1 (UID 7 FLAGS (\\Seen) INTERNALDATE "02-Jan-2026 21:59:59 +0000" RFC822.SIZE 21 BODY[] {21}',
            BODY,
        ),
        b")",
        (b"2 (BODY[] {21}", BODY),
        b' INTERNALDATE "01-Jan-2026 00:00:00 +0000" FLAGS () RFC822.SIZE 21 UID 8)',
        b"3 ()",
        b'4 (UID 9 BODY[] NIL FLAGS (\\Seen "a b"))',
    ]
    assert set(parse_fetch(data, requested={7, 8, 9})) == {7, 8, 9}
