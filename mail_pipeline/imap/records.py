"""What the protocol yields, as typed records: folders (LIST), their status (STATUS, EXAMINE), a
message's metadata (for planning) or the whole message (FETCH), and the batches FETCH asks in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from mail_pipeline.imap.errors import ImapProtocolError
from mail_pipeline.imap.fetch_response import FetchValue

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Folder:
    name: str
    flags: tuple[str, ...]
    delimiter: str | None = None


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    messages: int
    highestmodseq: int | None = None


@dataclass(frozen=True)
class MessageMeta:
    uid: int
    internaldate: datetime
    size: int
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    internaldate: datetime
    flags: tuple[str, ...]
    size: int
    raw: bytes


def _internaldate(uid: int, item: dict[bytes, FetchValue]) -> datetime:
    """A message without INTERNALDATE is an error: it must never be dropped or put on a wrong day."""
    value = item.get(b"INTERNALDATE")
    if not isinstance(value, datetime):
        raise ImapProtocolError(f"FETCH response for UID {uid} has no INTERNALDATE")
    return value


def message_meta(uid: int, item: dict[bytes, FetchValue]) -> MessageMeta:
    size = item.get(b"RFC822.SIZE")
    if not isinstance(size, int):
        raise ImapProtocolError(f"FETCH response for UID {uid} has no RFC822.SIZE")
    return MessageMeta(
        uid=uid, internaldate=_internaldate(uid, item), size=size, flags=flag_names(item)
    )


def flag_names(item: dict[bytes, FetchValue]) -> tuple[str, ...]:
    # \Recent is the session's state, not the message's (RFC 3501 2.3.2).
    flags = item.get(b"FLAGS") or ()
    if not isinstance(flags, tuple):  # parse_response reads a parenthesised list as a tuple
        raise ImapProtocolError(f"FETCH FLAGS is not a list: {flags!r}")
    return tuple(flag.decode(errors="replace") for flag in flags if flag.upper() != b"\\RECENT")


def fetched_message(meta: MessageMeta, item: dict[bytes, FetchValue]) -> FetchedMessage:
    """The body of `item` with the plan's metadata; FLAGS sent with it (changed since) win."""
    flags = flag_names(item) if b"FLAGS" in item else meta.flags
    raw = item[b"BODY[]"]
    if not isinstance(raw, bytes):
        raise ImapProtocolError(f"FETCH response for UID {meta.uid} has no BODY[] literal")
    return FetchedMessage(
        uid=meta.uid,
        internaldate=meta.internaldate,
        flags=flags,
        size=meta.size,
        raw=raw,
    )


def plan_batches(
    metas: Iterable[MessageMeta], *, max_messages: int, max_bytes: int
) -> Iterator[list[MessageMeta]]:
    batch: list[MessageMeta] = []
    size = 0
    for meta in metas:
        if batch and (len(batch) >= max_messages or size + meta.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(meta)
        size += meta.size
    if batch:
        yield batch


def sequence_set(uids: Sequence[int]) -> str:
    """`1:3,7` for [1, 2, 3, 7]: the UIDs as ranges (RFC 3501 9 sequence-set)."""
    runs: list[list[int]] = []
    for uid in sorted(set(uids)):
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(f"{a}:{b}" if a != b else str(a) for a, b in runs)


def header_message_id(raw: bytes) -> str | None:
    """The Message-ID header, unfolded and without angle brackets (None when absent)."""
    end = raw.find(b"\r\n\r\n")
    head = raw[: end if end >= 0 else 65536]
    match = _MESSAGE_ID.search(head)
    if not match:
        return None
    value = re.sub(rb"\s+", b"", match.group(1)).decode("ascii", errors="replace").strip("<>")
    return value or None
