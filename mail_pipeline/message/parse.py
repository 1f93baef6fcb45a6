"""MIME parsing: raw RFC 5322 bytes to a `ParsedEmail` record, never raising.

Parsed with the stdlib's ``compat32`` policy and decoded here, which is ~3x faster than
``policy.default`` with ``get_body``/``get_content`` (~430 msg/s for that alone). Measured on one
core, CPython 3.11: ~1,200 msg/s on 15 KB multipart/alternative mail, ~850 msg/s on the
synthetic mailbox (mean 15 KB); HTML-only mail is bound by html2text (~300-550 msg/s).

Hostile input is bounded by `ParseLimits` (see `mime` for the structure) and over-sized parts
are truncated; each cut is recorded in ``defects``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from mail_pipeline.message import mime, quotes
from mail_pipeline.message import text as mtext
from mail_pipeline.message.headers import Address, headers_of
from mail_pipeline.message.mime import ParseLimits


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int
    sha256: str  # "" when the part was over max_part_bytes
    inline: bool


@dataclass(frozen=True)
class ParsedEmail:
    """One message as the `emails` table needs it. Ids have no angle brackets, lowercased domains."""

    message_id: str  # synthetic-<sha256 of raw>@mail-pipeline.invalid when missing or unusable
    message_id_synthetic: bool
    in_reply_to: str | None
    references: list[str]  # in order, without duplicates or the message's own id
    thread_root: str  # provisional: references[0], else in_reply_to, else message_id
    subject: str
    subject_normalized: str  # lowercased, reply/forward prefixes and [list tags] stripped
    from_name: str
    from_address: str
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    list_id: str | None
    sent_at: datetime | None  # Date header in UTC
    body_source: str  # "text/plain" | "text/html" | "none"
    body_text: str
    search_text: str  # what the author wrote (and forwarded): see `quotes`
    attachments: list[Attachment]  # message/* parts and the parts inside them included
    defects: list[str]


def message_key(message_id: str) -> str:
    """Stable 24-hex key of a Message-ID (sha256 of it): what thread ids are made of."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def email_id(message_id: str, content: str) -> str:
    """Stable 24-hex id of one distinct message: its Message-ID and its content key.

    Different messages that share a Message-ID (a draft and the sent version, senders that
    reuse ids) get different ids; copies of one message in several folders get the same one.
    """
    key = f"{message_id}\n{content}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:24]


def content_key(parsed: ParsedEmail) -> str:
    """sha256 of what a reader sees: Date, normalized subject, searchable text, attachments' hashes.

    Not of the raw bytes: servers add Received, X-Keywords or Status headers per folder, and an
    IMAP COPY may re-encode line ends, so byte hashes split one message into several rows. The
    searchable text (whitespace collapsed) is what a row exists to be found by; a mailing list's
    footer and [tag] drop out of it, so the list's copy and the Sent copy stay one message. The
    Date header travels with every copy, and tells a re-sent notification from its first send.
    A change to text cleaning changes ids at the next materialization; chunks and vectors are
    rebuilt per partition with them, and the embedding cache (keyed by chunk text) keeps that cheap.
    """
    text = " ".join((parsed.search_text or parsed.body_text).split())
    parts = sorted(a.sha256 or f"{a.content_type}:{a.size}" for a in parsed.attachments)
    sent = parsed.sent_at.isoformat() if parsed.sent_at else ""
    data = "\0".join([sent, parsed.subject_normalized, text, *parts])
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def parse_message(raw: bytes, limits: ParseLimits = ParseLimits()) -> ParsedEmail:
    """Parse one RFC 5322 message; never raises.

    Any unexpected error gives a record with the headers that could still be read (or a
    synthetic id and nothing else) and the defect ``unparseable:<ExceptionClass>``.
    """
    try:
        return _parse(raw, limits)
    except Exception as exc:
        return _unparseable(raw, exc)


def _parse(raw: bytes, limits: ParseLimits) -> ParsedEmail:
    defects: list[str] = []
    msg = mime.parse_tree(raw, limits, defects)
    headers = headers_of(msg, raw, defects)
    leaves, body_source, body_text = leaves_and_body(msg, limits, defects)
    attachments = [_attachment(leaf.part, limits, defects) for leaf in leaves if not leaf.text]
    return ParsedEmail(
        **headers,
        body_source=body_source,
        body_text=body_text,
        search_text=quotes.strip_quotes_and_signature(
            body_text, mtext.is_forward_subject(headers["subject"])
        ),
        attachments=attachments,
        defects=list(dict.fromkeys(defects)),
    )


def leaves_and_body(
    msg: Message, limits: ParseLimits, defects: list[str]
) -> tuple[list[mime.Leaf], str, str]:
    """The message's leaves, ``text`` set on those that make the body; body source and text.

    The leaves without ``text`` are the attachments, in `ParsedEmail.attachments` order.
    """
    leaves = mime.walk(msg, limits, defects)
    body_source, body_text = _body(leaves, limits, defects)
    if body_source == "none" and any(mime.named_inline_text(leaf) for leaf in leaves):
        # Apple Mail and some web mailers name the only text part ("Message.html"): it is the body.
        leaves = [
            replace(leaf, text=True) if mime.named_inline_text(leaf) else leaf for leaf in leaves
        ]
        body_source, body_text = _body(leaves, limits, defects)
    return leaves, body_source, body_text


def _unparseable(raw: bytes, exc: Exception) -> ParsedEmail:
    raw = bytes(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else b""  # e.g. a null
    defects = [f"unparseable:{type(exc).__name__}"]
    try:
        headers = headers_of(BytesHeaderParser(policy=compat32).parsebytes(raw), raw, defects)
    except Exception:
        defects = defects[:1]
        headers = headers_of(Message(), raw, [])
    return ParsedEmail(**headers, body_source="none", body_text="", search_text="",
                       attachments=[], defects=list(dict.fromkeys(defects)))  # fmt: skip


# --- content ---------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset=["']?([\w.:-]{1,40})""", re.I)


def _payload_bytes(part: Message, limits: ParseLimits, text: bool) -> tuple[bytes, int, bool]:
    """(decoded bytes cut at max_part_bytes, decoded size, over the limit)."""
    size = 0
    if part.is_multipart():  # message/*: the attached message as it serializes
        data = _serialized(part)
    else:
        encoded = _encoded_payload(part)
        if len(encoded) > 2 * limits.max_part_bytes:
            # Decode at most a prefix, and only of text: a hostile part must not double memory.
            cte = part.get("content-transfer-encoding", "").strip().lower()
            size = len(encoded) * 3 // 4 if cte == "base64" else len(encoded)
            if not text:
                return b"", size, True
            if cte in ("base64", "quoted-printable"):  # 8-bit data is its own bytes: cut after
                part.set_payload(encoded[: 2 * limits.max_part_bytes])
        decoded = part.get_payload(decode=True)  # bytes, or None, of a part that is not multipart
        data = decoded if isinstance(decoded, bytes) else b""
    size = max(size, len(data))
    return data[: limits.max_part_bytes], size, size > limits.max_part_bytes


def _encoded_payload(part: Message) -> str:
    """The part's payload as stored (transfer-encoded), for its size and a prefix.

    8-bit data comes back decoded with the declared charset, which a hostile charset name
    (a NUL, a codec without "replace") makes raise: such a part is then sized after decoding.
    """
    try:
        encoded = part.get_payload()
    except (LookupError, UnicodeError, ValueError):
        return ""
    return encoded if isinstance(encoded, str) else ""


_AS_IS = compat32.clone(mangle_from_=False)


def _serialized(part: Message) -> bytes:
    try:
        payload = part.get_payload()
        subs = [sub for sub in payload if isinstance(sub, Message)]
        if isinstance(payload, Message) or len(subs) != len(payload):
            return b""  # text has no as_bytes: what the join raised on
        return b"".join(sub.as_bytes(policy=_AS_IS) for sub in subs)
    except Exception:
        return b""


def _part_text(part: Message, limits: ParseLimits, defects: list[str]) -> str:
    data, _, over = _payload_bytes(part, limits, text=True)
    if over:
        defects.append("part_size_limit")
    charset = mime.param(part, "charset", "content-type")
    if isinstance(charset, tuple):  # RFC 2231-encoded charset parameter
        charset = charset[2]
    is_html = part.get_content_type() == "text/html"
    if charset is None and is_html and (meta := _META_CHARSET.search(data[:4096])):
        charset = meta.group(1).decode("ascii")
    text, defect = mtext.decode_bytes(data, charset)
    if defect:
        defects.append(defect)
    if len(text) > limits.max_text_chars:
        defects.append("text_limit")
        text = text[: limits.max_text_chars]
    return mtext.html_to_text(text) if is_html else text


def _body(leaves: list[mime.Leaf], limits: ParseLimits, defects: list[str]) -> tuple[str, str]:
    """Own text/plain parts joined, else own text/html, else those of an attached message."""
    for nested in (False, True):
        for ctype in ("text/plain", "text/html"):
            parts = [leaf.part for leaf in leaves if leaf.text and leaf.nested == nested
                     and leaf.part.get_content_type() == ctype]  # fmt: skip
            texts = [_part_text(part, limits, defects) for part in parts]
            body = mtext.clean_text("\n\n".join(texts))[: limits.max_text_chars]
            if body:
                return ctype, body
    return "none", ""


def _attachment(part: Message, limits: ParseLimits, defects: list[str]) -> Attachment:
    return _attachment_with_data(part, limits, defects)[0]


def _attachment_with_data(
    part: Message, limits: ParseLimits, defects: list[str]
) -> tuple[Attachment, bytes]:
    data, size, over = _payload_bytes(part, limits, text=False)
    if over:
        defects.append("part_size_limit")
    disposition = part.get_content_disposition()
    return Attachment(
        filename=mime.filename(part),
        content_type=part.get_content_type(),
        size=size,
        sha256="" if over else hashlib.sha256(data).hexdigest(),
        inline=disposition == "inline" or (disposition is None and "content-id" in part),
    ), data


def attachment_payloads(
    raw: bytes, limits: ParseLimits = ParseLimits()
) -> list[tuple[Attachment, bytes, str | None]]:
    """`parse_message(raw).attachments` in the same order, each with its decoded bytes (cut at
    max_part_bytes) and declared charset: what attachment text extraction reads."""
    defects: list[str] = []
    leaves = leaves_and_body(mime.parse_tree(raw, limits, defects), limits, defects)[0]
    out = []
    for leaf in leaves:
        if not leaf.text:
            charset = mime.param(leaf.part, "charset", "content-type")
            charset = charset[2] if isinstance(charset, tuple) else charset
            out.append((*_attachment_with_data(leaf.part, limits, defects), charset))
    return out


def is_reply_subject(subject: str) -> bool:
    """True when a subject carries a reply prefix (for `threads.ThreadInput.is_reply`)."""
    return mtext.has_reply_prefix(subject)
