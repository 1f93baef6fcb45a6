"""Parse the untagged FETCH responses of a `UID FETCH`, as imaplib hands them over.

imapclient's char-level lexer spent 1.0 s of a 3.3 s fetch of the 20k-message bench mailbox;
this parser spends 0.3 s. imaplib already splits every literal out of the line, so what is left
is a short flat item list per message, which one compiled regex per item reads. Only the shapes
items of a body FETCH take are accepted (RFC 3501 7.4.2: numbers, quoted strings, literals, NIL,
flat parenthesized lists), with the slack real servers need: runs of spaces, a space before the
closing `)` (qq.com, Gmail) and no space after a literal (Exchange puts `UID n` right after the
body). A response this parser cannot read goes to imapclient's parser; one neither can read
raises FetchParseError unless it is unsolicited (no UID that was asked for).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from imapclient.exceptions import ProtocolError
from imapclient.response_parser import parse_fetch_response

log = logging.getLogger(__name__)

FetchValue = int | bytes | tuple[bytes, ...] | datetime | None

_QUOTED = rb'"(?:[^"\\]|\\["\\])*"'
_RESPONSE = re.compile(rb"(\d+) +\( *")
_NAME = rb"(?P<name>[A-Za-z0-9.\-]+(?:\[[^\]]*\](?:<\d+>)?)?)"
_VALUE = (
    rb"(?:(?P<number>\d+)|(?P<quoted>"
    + _QUOTED
    + rb")|\((?P<list>(?:[^()\"]|"
    + _QUOTED
    + rb")*)\)"
    rb"|NIL|\{(?P<literal>\d+)\})"
)
# RFC 3501's spacing: one space between items, none before the closing `)`.
_ITEM = re.compile(_NAME + rb" " + _VALUE + rb"(?: |(?P<end>\)\Z))")
# Where _ITEM fails: runs of spaces, spaces before `)` (qq.com, Gmail), no space after a literal
# (Exchange; imaplib's next piece starts the text). Tried second: its optional parts cost the
# happy path a fifth of its time when tried first.
_LOOSE_ITEM = re.compile(rb" *(?:" + _NAME + rb" +" + _VALUE + rb")? *(?P<end>\)\Z)?")
# What the session relies on, checked in imapclient's reading of a response.
_SHAPES = {b"UID": int, b"RFC822.SIZE": int, b"INTERNALDATE": datetime, b"FLAGS": tuple}
_LOOSE_UID = re.compile(rb"[ (]UID +(\d+)", re.IGNORECASE)
_LIST_TOKEN = re.compile(rb" *(?:(" + _QUOTED + rb")|([^ ()\"]+))")
_ESCAPE = re.compile(rb"\\(.)")
_INTERNALDATE = re.compile(
    rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            b"JAN",
            b"FEB",
            b"MAR",
            b"APR",
            b"MAY",
            b"JUN",
            b"JUL",
            b"AUG",
            b"SEP",
            b"OCT",
            b"NOV",
            b"DEC",
        ),
        start=1,
    )
}


class FetchParseError(ValueError):
    """A FETCH response this parser does not understand (the text shown holds no literal)."""


def parse_fetch(
    data: list[bytes | tuple[bytes, bytes] | None], requested: Collection[int] | None = None
) -> dict[int, dict[bytes, FetchValue]]:
    """The items of each message, by UID, from imaplib's untagged FETCH data.

    A response without UID, or (given `requested`) with a UID not asked for, is unsolicited
    (a UID command's own responses always carry it, RFC 3501 6.4.8): it is skipped, however odd
    its shape. Several responses for one UID are merged, the later winning."""
    found: dict[int, dict[bytes, FetchValue]] = {}
    for text, literals in _responses(data):
        try:
            items = parse_response(text, literals)
        except FetchParseError as error:
            items = _fallback(text, literals, error, requested)
        uid = items.get(b"UID")
        if isinstance(uid, int) and (requested is None or uid in requested):
            found.setdefault(uid, {}).update(items)
    return found


def _fallback(
    text: bytes, literals: list[bytes], error: FetchParseError, requested: Collection[int] | None
) -> dict[bytes, FetchValue]:
    """imapclient's reading of a response this parser rejects; {} for an unreadable one that
    carries no requested UID; `error` when a requested message cannot be read either way."""
    try:
        items = _imapclient_items(text, literals)
    except (ProtocolError, ValueError, TypeError, IndexError) as fallback_error:
        uid = _LOOSE_UID.search(text)
        if uid is None or (requested is not None and int(uid[1]) not in requested):
            log.debug("ignoring an unreadable unsolicited FETCH response: %s", _excerpt(text, 0))
            return {}
        raise FetchParseError(f"{error}; imapclient's parser: {fallback_error}") from None
    log.info("FETCH response read by imapclient's parser after: %s", error)
    return items


def _imapclient_items(text: bytes, literals: list[bytes]) -> dict[bytes, FetchValue]:
    """One response through imapclient's char-level parser, in this module's value types."""
    pieces: list[Any] = []
    rest = text
    for literal in literals:
        head, separator, rest = rest.partition(b"{%d}" % len(literal))
        if not separator:
            raise ValueError(f"no literal of {len(literal)} bytes in the response text")
        pieces.append((head + separator, literal))
    pieces.append(rest)
    parsed = parse_fetch_response(pieces, normalise_times=False, uid_is_key=False)
    items = dict(next(iter(parsed.values()), {}))
    items.pop(b"SEQ", None)
    for name, kind in _SHAPES.items():
        # imapclient reads what it cannot parse as None (a bad date) or a bare atom (FLAGS).
        if name in items and not isinstance(items[name], kind):
            raise ValueError(f"{name.decode()} read as {items[name]!r}")
    if b"INTERNALDATE" in items:
        items[b"INTERNALDATE"] = items[b"INTERNALDATE"].astimezone(UTC)
    return items


def _responses(
    data: list[bytes | tuple[bytes, bytes] | None],
) -> Iterator[tuple[bytes, list[bytes]]]:
    """(text, literals) per response. imaplib stores a response with literals as one
    (text up to `{n}`, literal) tuple per literal followed by the rest of the line as bytes."""
    if data == [None]:  # imaplib's "no FETCH responses at all"
        return
    pieces: list[bytes] = []
    literals: list[bytes] = []
    for part in data:
        if isinstance(part, tuple):
            pieces.append(part[0])
            literals.append(part[1])
        elif isinstance(part, bytes):
            pieces.append(part)
            yield b"".join(pieces), literals
            pieces, literals = [], []
        else:
            raise FetchParseError(f"unexpected FETCH data part {type(part).__name__}")
    if pieces:
        raise FetchParseError(
            f"FETCH response ends inside a literal: {_excerpt(b''.join(pieces), 0)}"
        )


def parse_response(text: bytes, literals: Sequence[bytes] = ()) -> dict[bytes, FetchValue]:
    """One response, `<seq> (NAME value ...)`, where each `{n}` stands for the next literal.
    INTERNALDATE comes back as an aware UTC datetime, every other value as the wire gave it."""
    start = _RESPONSE.match(text)
    if start is None:
        raise FetchParseError(f"not a FETCH response: {_excerpt(text, 0)}")
    items: dict[bytes, FetchValue] = {}
    pending = list(literals)
    position = start.end()
    end = text[position:] == b")"
    while not end:
        match = _ITEM.match(text, position) or _LOOSE_ITEM.match(text, position)
        if match is None:  # _LOOSE_ITEM's parts are all optional: it matches anywhere
            raise FetchParseError(
                f"cannot parse FETCH item at byte {position}: {_excerpt(text, position)}"
            )
        name, number, quoted, listed, literal, closing = match.groups()
        end = closing is not None  # the group is `)` when it matched
        if name is None:  # _LOOSE_ITEM found no item: only the closing `)`, or what no rule reads
            if end:
                break
            raise FetchParseError(
                f"cannot parse FETCH item at byte {position}: {_excerpt(text, position)}"
            )
        name = name.upper()
        value: FetchValue = None
        if number is not None:
            value = int(number)
        elif quoted is not None:
            value = _unquote(quoted)
        elif listed is not None:
            value = _list_tokens(listed)
        elif literal is not None:
            value = _literal(name, int(literal), pending)
        items[name] = (
            parse_internaldate(value) if name == b"INTERNALDATE" and value is not None else value
        )
        position = match.end()
    if pending:
        raise FetchParseError(
            f"{len(pending)} literal(s) left over in FETCH response: {_excerpt(text, 0)}"
        )
    return items


def _literal(name: bytes, size: int, pending: list[bytes]) -> bytes:
    if not pending or len(pending[0]) != size:
        got = f"{len(pending[0])} bytes" if pending else "none"
        raise FetchParseError(
            f"literal {{{size}}} of {name.decode()} does not match the data read ({got})"
        )
    return pending.pop(0)


def _list_tokens(text: bytes) -> tuple[bytes, ...]:
    if b'"' not in text:
        return tuple(text.split())
    tokens = []
    position = 0
    while position < len(text):
        match = _LIST_TOKEN.match(text, position)
        if match is None:
            raise FetchParseError(f"cannot parse list ({_excerpt(text, 0)}) in FETCH response")
        tokens.append(_unquote(match[1]) if match[1] is not None else match[2])
        position = match.end()
    return tuple(tokens)


def _unquote(quoted: bytes) -> bytes:
    return _ESCAPE.sub(rb"\1", quoted[1:-1]) if b"\\" in quoted else quoted[1:-1]


def _excerpt(text: bytes, position: int) -> str:
    return repr(text[max(position - 20, 0) : position + 60])


def parse_internaldate(value: FetchValue) -> datetime:
    """INTERNALDATE (`"17-Jul-1996 02:44:25 -0700"`, RFC 3501 9 date-time) as an aware UTC datetime.

    A regex instead of strptime/email.utils: they cost more than the rest of a message's parse."""
    match = _INTERNALDATE.fullmatch(value) if isinstance(value, bytes) else None
    month = _MONTHS.get(match[2].upper()) if match else None
    if match is None or month is None:
        raise FetchParseError(f"cannot parse INTERNALDATE {value!r}")
    day, _, year, hour, minute, second, sign, offset_hours, offset_minutes = match.groups()
    offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
    local = datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    return local - offset if sign == b"+" else local + offset
