"""Header fields of a message: identity, threading ids, addresses, subject and date.

Message-IDs are normalized (no angle brackets, domain part lowercased: RFC 5322 3.6.4 leaves
the local part case-sensitive); a message without one gets a synthetic id from the sha256 of
its bytes, so re-runs give the same id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import utils as email_utils
from email.message import Message
from typing import Any

from mail_pipeline.message import text as mtext


@dataclass(frozen=True)
class Address:
    name: str  # RFC 2047 decoded, "" when absent
    address: str  # domain part lowercased


_ANGLE_ID = re.compile(r"<([^<>]+)>")
_SINGLE = ("message-id", "subject", "from", "date")
_LISTS = (("to", "to"), ("cc", "cc"), ("bcc", "bcc"), ("reply_to", "reply-to"))


# What a reader sees of a message; trace headers (Received, Delivered-To, X-Keywords, Status)
# differ between the copies a server keeps in two folders, so they stay out of the synthetic id.
_IDENTITY_HEADERS = ("from", "to", "cc", "date", "subject")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def synthetic_id(raw: bytes, headers: dict[str, list[str]] | None = None) -> str:
    """Id for a message without a usable Message-ID: sha256 of its identity headers and body."""
    digest = hashlib.sha256()
    end = _HEAD_END.search(raw)
    if end is None or headers is None or not any(name in headers for name in _IDENTITY_HEADERS):
        # no header block to tell apart from the body: the bytes are all there is
        digest.update(raw)
    else:
        for name in _IDENTITY_HEADERS:
            digest.update(
                "\0".join(headers.get(name, [])).encode("utf-8", "surrogateescape") + b"\n"
            )
        digest.update(raw[end.end() :].replace(b"\r\n", b"\n"))
    return f"synthetic-{digest.hexdigest()[:32]}@mail-pipeline.invalid"


def _normalize_id(token: str) -> str | None:
    token = "".join(token.split()).strip("<>")  # long ids get folded mid-token
    local, at, domain = token.rpartition("@")
    if not at or not local or not domain or len(token) > 998:
        return None
    return f"{local}@{domain.lower()}"


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    value = mtext.header_text(value)
    tokens = _ANGLE_ID.findall(value) or value.replace(",", " ").split()
    ids = (_normalize_id(token) for token in tokens)
    return list(dict.fromkeys(i for i in ids if i))


def _without_comments(value: str) -> tuple[str, str]:
    """(value with RFC 5322 §3.2.2 comments removed, the comments' text); quoted strings kept."""
    out: list[str] = []
    comments: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        target = comments if depth else out
        if escaped:
            target.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
            if not depth:
                out.append(char)
        elif char == '"' and not depth:
            quoted = not quoted
            out.append(char)
        elif char == "(" and not quoted:
            depth += 1
            if depth == 1:
                out.append(" ")
        elif char == ")" and depth:
            depth -= 1
            comments.append(" ")
        else:
            target.append(char)
    if depth:  # an unclosed "(" is a stray character, not a comment swallowing the address
        return value, ""
    return "".join(out), " ".join("".join(comments).split())


_ADDR_SPEC = re.compile(r'[^\s<>()\[\]",;:@]+@[^\s<>()\[\]",;:@]+')
_PIECE = re.compile(r'(?:"[^"]*"?|[^,"])+')  # an address list item: commas inside quotes kept


_ANGLE_ADDR = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>")


_QUOTED_LOCAL = re.compile(r'"[^"]*"')  # '"john smith"@example.com' is a valid address


def _spaced(addr: str) -> bool:
    return any(c.isspace() for c in _QUOTED_LOCAL.sub("", addr))


def _broken(pairs: list[tuple[str, str]]) -> bool:
    return any("@" not in addr or addr.startswith("@") or _spaced(addr) for _, addr in pairs)


def _tolerant(value: str) -> list[tuple[str, str]]:
    """Addresses of a header that is not an address list: "a@x b@y", "Name addr@host"."""
    out: list[tuple[str, str]] = []
    for piece in _PIECE.findall(value):
        if angle := _ANGLE_ADDR.search(piece):
            out.append((piece[: angle.start()].strip("\"'() \t"), angle.group(1)))
            continue
        specs = _ADDR_SPEC.findall(piece)
        name = " ".join(_ADDR_SPEC.sub(" ", piece).split()).strip("\"' ")
        out += [(name if len(specs) == 1 else "", spec) for spec in specs]
    return out


def _pairs(value: str, defects: list[str], header: str) -> list[tuple[str, str]]:
    value = mtext.unfold(value)
    comment = ""
    if "(" in value:  # rare: the stdlib's getaddresses folds comments into the display name
        value, comment = _without_comments(value)
    pairs = email_utils.getaddresses([value])
    if _broken(pairs) and "@" in value:
        defects.append(f"malformed_address:{header}")
        pairs = _tolerant(value)
    if comment and len(pairs) == 1 and not pairs[0][0] and "<" not in value:
        pairs = [(comment, pairs[0][1])]  # RFC 822's "addr (Name)": the comment is the only name
    return pairs


def _addresses(values: list[str], defects: list[str], header: str) -> list[Address]:
    out = []
    for value in values:
        for name, addr in _pairs(value, defects, header):
            addr = mtext.header_text(addr).strip()
            if not addr:
                continue
            if _spaced(addr):  # "Bob Smith)" with no "@" to recover from
                defects.append(f"malformed_address:{header}")
                continue
            local, at, domain = addr.rpartition("@")
            addr = f"{local}@{domain.lower()}" if at else addr
            out.append(Address(mtext.decode_header_value(name).strip("\"' "), addr))
    return out


def _sent_at(value: str | None, defects: list[str]) -> datetime | None:
    if value is None or not value.strip():
        defects.append("missing_date")
        return None
    try:
        parsed = email_utils.parsedate_to_datetime(mtext.header_text(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append("bad_date")
        return None
    if parsed.tzinfo is None:  # "-0000": UTC, local zone unknown (RFC 5322 §3.3)
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _ids_fields(headers: dict[str, list[str]], raw: bytes, defects: list[str]) -> dict[str, Any]:
    found = _message_ids(_first(headers, "message-id"))
    message_id = found[0] if found else synthetic_id(raw, headers)
    if not found:
        defects.append("bad_message_id" if "message-id" in headers else "missing_message_id")
    in_reply_to = next(iter(_message_ids(_first(headers, "in-reply-to"))), None)
    references = [
        r for r in _message_ids(" ".join(headers.get("references", []))) if r != message_id
    ]
    root = references[0] if references else in_reply_to or message_id
    return {"message_id": message_id, "message_id_synthetic": not found,
                "in_reply_to": in_reply_to, "references": references, "thread_root": root}  # fmt: skip


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def headers_of(msg: Message, raw: bytes, defects: list[str]) -> dict[str, Any]:
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.strip().lower(), []).append(value)
    defects.extend(f"duplicate_header:{n}" for n in _SINGLE if len(headers.get(n, ())) > 1)
    senders = _addresses(headers.get("from", [])[:1], defects, "from")
    if not senders:
        defects.append("missing_from" if "from" not in headers else "bad_from")
    subject = mtext.decode_header_value(_first(headers, "subject") or "")
    list_id = _first(headers, "list-id")
    list_id = mtext.header_text(list_id) if list_id else None
    if list_id:
        list_id = (_ANGLE_ID.findall(list_id) or [list_id])[-1].strip().lower() or None
    fields = _ids_fields(headers, raw, defects)
    return dict(fields, subject=subject, subject_normalized=mtext.normalize_subject(subject),
        from_name=senders[0].name if senders else "",
        from_address=senders[0].address if senders else "",
        **{field: _addresses(headers.get(name, []), defects, name) for field, name in _LISTS},
        list_id=list_id, sent_at=_sent_at(_first(headers, "date"), defects))  # fmt: skip
