"""Flags and expunges without bodies: changes since a mod-sequence (RFC 7162 CONDSTORE/QRESYNC),
FLAGS in UID ranges for servers without it, and the Message-IDs that match a message to a stored
copy. The folder must be selected; nothing here fetches a body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from mail_pipeline.imap.errors import ImapProtocolError
from mail_pipeline.imap.fetch_response import FetchValue
from mail_pipeline.imap.records import flag_names, header_message_id, sequence_set
from mail_pipeline.imap.session import ImapSession

# FLAGS answers are a few dozen bytes per message: large ranges keep the round trips few.
FLAGS_BATCH = 5000
MESSAGE_ID_ITEM = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
_SEQUENCE_SET = re.compile(rb"^(\d+(?::\d+)?)(,\d+(?::\d+)?)*$")


def lasting_flags(flags: Iterable[str]) -> frozenset[str]:
    """The flags that describe the message: \\Recent belongs to a session, not to it (RFC 3501 2.3.2)."""
    return frozenset(f for f in flags if f.lower() != "\\recent")


@dataclass(frozen=True)
class FlagState:
    uid: int
    flags: tuple[str, ...]
    internaldate: datetime | None = None


@dataclass
class Changes:
    flags: list[FlagState]
    vanished: set[int] | None  # None: the server cannot say (no QRESYNC)


def parse_vanished(data: Sequence[bytes]) -> set[int]:
    """The UIDs of `VANISHED [(EARLIER)] <uid-set>` responses (RFC 7162 3.2.10)."""
    uids: set[int] = set()
    for line in data:
        words = line.split()
        if words and words[0].upper() == b"(EARLIER)":
            words = words[1:]
        if len(words) != 1 or not _SEQUENCE_SET.match(words[0]):
            raise ImapProtocolError(f"cannot read VANISHED response {line[:80]!r}")
        for part in words[0].split(b","):
            first, _, last = part.partition(b":")
            low, high = sorted((int(first), int(last or first)))
            uids.update(range(low, high + 1))
    return uids


def _states(data: dict[int, dict[bytes, FetchValue]]) -> list[FlagState]:
    return [
        FlagState(uid, flag_names(item), _internaldate(item)) for uid, item in sorted(data.items())
    ]


def _internaldate(item: dict[bytes, FetchValue]) -> datetime | None:
    # parse_response reads INTERNALDATE as a datetime; None where the server sent none
    value = item.get(b"INTERNALDATE")
    if value is not None and not isinstance(value, datetime):
        raise ImapProtocolError(f"INTERNALDATE is not a date: {value!r}")
    return value


def changed_since(session: ImapSession, modseq: int, qresync: bool) -> Changes:
    """Messages whose flags changed after `modseq` and, with QRESYNC enabled before SELECT, the UIDs
    expunged since (`UID FETCH 1:* (FLAGS INTERNALDATE) (CHANGEDSINCE m VANISHED)`, RFC 7162 3.1.4.1, 3.2.6)."""
    modifier = f"(CHANGEDSINCE {modseq}{' VANISHED' if qresync else ''})"
    data, vanished = session.uid_fetch("1:*", [b"FLAGS", b"INTERNALDATE"], modifier)
    return Changes(_states(data), parse_vanished(vanished) if qresync else None)


def batches(uids: Sequence[int], size: int) -> Iterator[list[int]]:
    ordered = sorted(uids)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def fetch_flags(
    session: ImapSession,
    uids: Sequence[int],
    batch: int = FLAGS_BATCH,
    changed_since: int | None = None,
) -> list[FlagState]:
    """FLAGS of `uids`, a few thousand per command as UID ranges: the fallback without CONDSTORE;
    with `changed_since`, only of those whose flags changed after it (`(CHANGEDSINCE m)`,
    RFC 7162 3.1.4: the others are not in the answer)."""
    modifier = f"(CHANGEDSINCE {changed_since})" if changed_since is not None else ""
    found: list[FlagState] = []
    for chunk in batches(uids, batch):
        data, _ = session.uid_fetch(sequence_set(chunk), [b"FLAGS"], modifier, requested=set(chunk))
        found += _states(data)
    return found


def message_ids(
    session: ImapSession, uids: Sequence[int], batch: int = 500
) -> dict[int, str | None]:
    """Message-ID of each UID, from its header field alone."""
    found: dict[int, str | None] = {}
    for chunk in batches(uids, batch):
        data, _ = session.uid_fetch(sequence_set(chunk), [MESSAGE_ID_ITEM], requested=set(chunk))
        for uid, item in data.items():
            header = next((v for k, v in item.items() if k.startswith(b"BODY[")), None)
            found[uid] = header_message_id(header) if isinstance(header, bytes) else None
    return found
