"""MIME structure: a bounded parse tree, its leaves in document order, part parameters.

Hostile input is bounded by `ParseLimits`: a pre-scan cuts the bytes where MIME nesting or the
part count passes a limit (the stdlib parser recurses per level and checks every line against
every open boundary), the walk stops at the same limits. Each cut is recorded in ``defects``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import utils as email_utils
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32
from typing import Any

from mail_pipeline.message import text as mtext


@dataclass(frozen=True)
class ParseLimits:
    """Bounds for hostile input; passing one truncates and records a defect, never raises."""

    max_depth: int = 30
    max_parts: int = 500
    max_part_bytes: int = 25 * 1024 * 1024
    max_text_chars: int = 2_000_000


_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I)
_DELIMITER = re.compile(rb"\n--([^\r\n]*)")
_FOLDED_BOUNDARY = re.compile(
    rb'boundary\s*=\s*"([^"\r\n]{0,200}(?:\r?\n[ \t]+[^"\r\n]{0,200}){1,5})"', re.I
)
_FOLD_BYTES = re.compile(rb"\r?\n([ \t]+)")


def _unfold_boundaries(raw: bytes, lowered: bytes, count: int, defects: list[str]) -> bytes:
    """Rewrite boundary parameters folded inside their quotes to the form the delimiters use.

    The stdlib keeps the line break in the boundary, so no delimiter matches and every nested
    part is lost. RFC 5322 unfolding keeps the whitespace; mailers that fold for line length
    mean it dropped. Whichever occurs as a delimiter line wins, else the RFC form.
    """
    pos, edits = -8, []
    for _ in range(min(count, 10_000)):  # stops at the last occurrence instead of scanning on
        pos = lowered.find(b"boundary", pos + 8)
        # Cheap first: a fold inside quotes leaves the parameter's line with one quote only.
        line_end = raw.find(b"\n", pos, pos + 300)
        if line_end != -1 and raw.count(b'"', pos, line_end) == 1 and (
                match := _FOLDED_BOUNDARY.match(raw, pos)):  # fmt: skip
            value = match.group(1)
            joined, unfolded = _FOLD_BYTES.sub(b"", value), _FOLD_BYTES.sub(rb"\1", value)
            chosen = (
                joined if b"\n--" + joined in raw and b"\n--" + unfolded not in raw else unfolded
            )
            edits.append((match.start(1), match.end(1), chosen))
    if not edits:
        return raw
    defects.append("folded_boundary")
    out, last = [], 0
    for start, end, value in edits:
        out += [raw[last:start], value]
        last = end
    return b"".join([*out, raw[last:]])


def prescan(raw: bytes, limits: ParseLimits, defects: list[str]) -> bytes:
    """Cut ``raw`` at the delimiter line where nesting or part count passes the limits."""
    lowered = raw.lower()
    if mentions := lowered.count(b"boundary"):
        unfolded = _unfold_boundaries(raw, lowered, mentions, defects)
        if unfolded is not raw:
            raw, lowered = unfolded, unfolded.lower()
    if mentions <= limits.max_depth and raw.count(b"\n--") <= limits.max_parts:
        return raw  # cannot pass either limit: the common case costs two C-speed counts
    declared = {a or b for a, b in _BOUNDARY_PARAM.findall(raw)}
    stack: list[bytes] = []
    parts = 0
    for match in _DELIMITER.finditer(raw):
        token = match.group(1).rstrip()
        if token in stack or token in declared:
            if token in stack:
                del stack[stack.index(token) + 1 :]
            else:
                stack.append(token)
            parts += 1
        elif token.endswith(b"--") and token[:-2] in stack:
            del stack[stack.index(token[:-2]) :]
        if len(stack) > limits.max_depth or parts > limits.max_parts:
            defects.append("depth_limit" if len(stack) > limits.max_depth else "parts_limit")
            return raw[: match.start() + 1]
    return raw


def parse_tree(raw: bytes, limits: ParseLimits, defects: list[str]) -> Message:
    raw = prescan(raw, limits, defects)
    try:
        return BytesParser(policy=compat32).parsebytes(raw)
    except RecursionError:
        # message/rfc822 chained without multiparts nests with no boundary to pre-scan for.
        defects.append("depth_limit")
        return BytesHeaderParser().parsebytes(raw)


@dataclass(frozen=True)
class Leaf:
    part: Message
    nested: bool  # inside an attached message/*: not part of this message's own body
    text: bool  # a body candidate (text/plain or text/html, not an attachment)


def walk(msg: Message, limits: ParseLimits, defects: list[str]) -> list[Leaf]:
    """Leaves in document order; message/* parts are leaves (attachments) and are descended."""
    leaves: list[Leaf] = []
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    visited = 0
    while stack:
        part, depth, nested = stack.pop()
        visited += 1
        if visited > limits.max_parts:
            defects.append("parts_limit")
            break
        if depth > limits.max_depth:
            defects.append("depth_limit")
            continue
        defects.extend(type(defect).__name__ for defect in part.defects)
        ctype = part.get_content_type()
        attached = ctype.startswith("message/") and part is not msg
        if attached or not part.is_multipart():
            leaves.append(Leaf(part, nested, _is_body_text(part, ctype)))
        # compat32 parses delivery-status into header blocks: a leaf, not a message to descend.
        if part.is_multipart() and ctype != "message/delivery-status":
            payload = part.get_payload()
            if not isinstance(payload, list):  # is_multipart() is a list payload
                raise TypeError(f"multipart payload is a {type(payload).__name__}")
            for child in reversed(payload):
                if not isinstance(child, Message):  # compat32 parses every child as one
                    raise TypeError(f"a multipart's child is a {type(child).__name__}")
                stack.append((child, depth + 1, nested or attached))
    return leaves


def named_inline_text(leaf: Leaf) -> bool:
    part = leaf.part
    return (not leaf.text and part.get_content_type() in ("text/plain", "text/html")
            and part.get_content_disposition() != "attachment")  # fmt: skip


def _is_body_text(part: Message, ctype: str) -> bool:
    if ctype not in ("text/plain", "text/html"):
        return False
    return part.get_content_disposition() != "attachment" and filename(part) is None


def param(part: Message, name: str, header: str) -> str | tuple[Any, ...] | None:
    try:
        return part.get_param(name, None, header)
    except (TypeError, ValueError):  # stdlib decode_params trips on malformed RFC 2231 parts
        return None


def _raw_param(part: Message, name: str, header: str) -> str | tuple[Any, ...] | None:
    """A parameter, with raw 8-bit bytes in the header decoded as UTF-8 (else cp1252).

    compat32 turns undeclared 8-bit bytes into U+FFFD before get_param sees them; mailers that
    skip RFC 2231 send filenames that way. Only then is the raw header read again.
    """
    value = param(part, name, header)
    if not (isinstance(value, str) and "\ufffd" in value):
        return value
    raw = next((v for k, v in part.raw_items() if k.lower() == header), "")
    stand_in = Message()
    stand_in[header] = mtext.header_text(raw)
    return param(stand_in, name, header)


def filename(part: Message) -> str | None:
    """Filename from Content-Disposition or Content-Type, RFC 2231 or RFC 2047 encoded."""
    value = _raw_param(part, "filename", "content-disposition")
    if value is None:
        value = _raw_param(part, "name", "content-type")
    if isinstance(value, tuple):  # RFC 2231 §4: (charset, language, %-decoded as latin-1)
        charset, _, text = value
        try:
            data = text.encode("latin-1", "surrogateescape")
        except UnicodeEncodeError:
            data = text.encode("utf-8", "surrogateescape")
        value = mtext.decode_bytes(data, charset)[0]
    return mtext.decode_header_value(email_utils.unquote(value)) or None if value else None
