"""Text of a message: charset decoding, RFC 2047 headers, HTML to text, search-text cleaning.

Pure functions, no I/O. Decoding never produces U+FFFD: every byte string decodes through the
chain declared charset -> UTF-8 -> cp1252 -> latin-1 (latin-1 maps every byte), and the caller
records ``charset_fallback:<codec>`` when the declared charset was not the one that worked.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import html as html_lib
import re

import html2text

# Labels that mail software means as a superset (WHATWG Encoding Standard, §4.2): decoding with
# the superset first avoids a needless fallback on e.g. GBK characters in "gb2312" mail.
_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "iso-8859-1": "cp1252", "tis-620": "cp874",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_2", "iso-8859-8-i": "iso-8859-8",
}  # fmt: skip
_FALLBACKS = ("utf-8", "cp1252", "latin-1")
# Python-only codecs, not MIME charsets: a label must not make "\\u0041" decode as "A".
_PYTHON_ONLY = {"unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined", "mbcs"}
# C0 controls except TAB, LF, CR, plus DEL: NUL bytes and friends break search and Parquet readers.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")  # str.translate cost 1/3 of parse time


@functools.lru_cache(maxsize=512)
def declared_codecs(charset: str | None) -> tuple[str, ...]:
    """Python codecs to try for a declared MIME charset label, superset first; () if unknown."""
    label = (charset or "us-ascii").strip().strip("\"'").lower()
    out: list[str] = []
    for name in (_SUPERSETS.get(label), label):
        try:
            codec = codecs.lookup(name).name if name else None
        except (LookupError, ValueError):  # hostile labels: NULs, surrogates
            continue
        if codec and codec not in out and codec not in _PYTHON_ONLY:
            out.append(codec)
    return tuple(out)


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode ``data``: declared charset, then UTF-8, cp1252, latin-1.

    Returns ``(text, defect)`` where defect is ``"charset_fallback:<codec>"`` when a fallback
    decoded the bytes, else None. A missing charset means us-ascii (RFC 2045 §5.2).
    """
    declared = declared_codecs(charset)
    for codec in (*declared, *_FALLBACKS):
        try:
            text = data.decode(codec)
        except (ValueError, LookupError):  # UnicodeError, and codecs like "undefined" that refuse
            continue
        if codecs.lookup(codec).name in declared:
            return text, None
        return text, f"charset_fallback:{codec}"
    raise AssertionError("latin-1 decodes every byte string")


def header_text(value: str) -> str:
    """A raw header value (8-bit bytes kept as surrogate escapes) as text, unfolded."""
    if value.isascii():
        return unfold(value)
    return decode_bytes(_raw_bytes(unfold(value)), "utf-8")[0]


# RFC 2047 §2; the text part is lenient about spaces, which some encoders leave unencoded.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def unfold(value: str) -> str:
    """Undo header folding (RFC 5322 §2.2.3): drop each CRLF that precedes whitespace."""
    return _FOLD.sub("", value).strip("\r\n")


def _raw_bytes(text: str) -> bytes:
    # BytesParser keeps non-ASCII header bytes as lone surrogates; this restores the bytes.
    return text.encode("utf-8", "surrogateescape")


def _decode_word(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "qQ":
            return binascii.a2b_qp(payload.encode("ascii", "surrogateescape"), header=True)
        padded = payload + "=" * (-len(payload) % 4)
        return binascii.a2b_base64(padded.encode("ascii", "surrogateescape"))
    except (binascii.Error, ValueError):
        return None


def decode_header_value(value: str) -> str:
    """Decode RFC 2047 encoded words in a raw header value and collapse whitespace.

    Adjacent encoded words in one charset are joined before decoding, so a multi-byte character
    split across two words (and two folded lines) survives; whitespace between encoded words is
    dropped (RFC 2047 §6.2). Plain runs with raw 8-bit bytes decode as UTF-8, then cp1252.
    """
    value = unfold(value)
    if "=?" not in value:
        return collapse_whitespace(header_text(value))
    pieces: list[tuple[bytearray, str | None]] = []  # bytearray: appending stays linear
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        data = _decode_word(match.group(2), match.group(3))
        if data is None:
            continue  # leave the undecodable word as plain text
        between = value[pos : match.start()]
        follows_word = bool(pieces) and pieces[-1][1] is not None
        if between and not (follows_word and between.isspace()):
            pieces.append((bytearray(_raw_bytes(between)), None))
        charset = match.group(1).split("*", 1)[0].lower()  # RFC 2231 §5 language suffix
        if pieces and pieces[-1][1] == charset and (not between or between.isspace()):
            pieces[-1][0].extend(data)
        else:
            pieces.append((bytearray(data), charset))
        pos = match.end()
    pieces.append((bytearray(_raw_bytes(value[pos:])), None))
    text = "".join(decode_bytes(bytes(data), charset or "utf-8")[0] for data, charset in pieces)
    return collapse_whitespace(text)


def collapse_whitespace(text: str) -> str:
    return " ".join((text if text.isprintable() else _CONTROLS.sub("", text)).split())


# Reply and forward prefixes in the languages mail clients localise them to, optionally with a
# counter ("Re[2]:", "Re(3):"), and mailing-list tags like "[dev]".
_REPLY_WORDS = r"re|aw|sv|vs|antw"
_PREFIX = re.compile(
    rf"\s*(?:(?:(?P<reply>{_REPLY_WORDS})|fwd?|wg|tr|rv)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*"
    r"|\[[^\[\]]{0,80}\]\s*)",
    re.IGNORECASE,
)


def _strip_prefixes(subject: str) -> tuple[str, bool]:
    is_reply, pos = False, 0
    while match := _PREFIX.match(subject, pos):  # by position: "Re: " * 10**5 stays linear
        is_reply = is_reply or match.group("reply") is not None
        pos = match.end()
    return subject[pos:], is_reply


# The first prefix decides: "Fwd: Re: x" forwards a conversation, "Re: Fwd: x" replies to one.
_FORWARD_FIRST = re.compile(
    r"\s*(?:\[[^\[\]]{0,80}\]\s*)*(?:fwd?|wg|tr|rv|vb|enc|doorst|vl|pd|i)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]",
    re.I,
)


def is_forward_subject(subject: str) -> bool:
    """True when the subject's first prefix is a forward one (Fwd:, FW:, WG:, TR:, RV:, VB:, ENC:,
    Doorst:, VL:, PD:, I:), as mail clients localise it."""
    return _FORWARD_FIRST.match(subject) is not None


def normalize_subject(subject: str) -> str:
    """Lowercased subject without reply/forward prefixes and leading [list tags]."""
    return collapse_whitespace(_strip_prefixes(subject)[0]).lower()


def has_reply_prefix(subject: str) -> bool:
    """True when the subject starts with a reply prefix (Re:, AW:, SV:, VS:, Antw:, ...)."""
    return _strip_prefixes(subject)[1]


_BLOCKS = [
    (re.compile(r"<(script|style|head)\b", re.I), r"</{}\s*>"),
    (re.compile(r"<!--"), r"-->"),
]
# <[^<>]* stops at the next tag, so hostile input with thousands of unclosed <img is linear.
_IMG = re.compile(r"<img\b[^<>]*>?", re.I)
_DATA_URI = re.compile(r"data:[^\s\"'<>)]*", re.I)
# Attributes carry nothing html2text keeps once links and images are ignored, and parsing them
# was a third of its time on newsletters. A quoted value holding "<" leaves its tag whole.
_ATTRIBUTES = re.compile(r"""<(/?[a-zA-Z][\w:-]*)(?:[^<>"']|"[^"<]*"|'[^'<]*')*>""")
_DECLARATIONS = re.compile(r"<[!?][^<>]*>")  # doctype, <![if mso]>, <?xml ...?>
# Python's HTMLParser rescans to the end of input at every unterminated "<" (42 s for 80 KB of
# '<a "'), and crawls through bare "&"s one at a time; after the passes above, a "<" that does
# not open a bare tag and an "&" that opens no entity travel through html2text as placeholders.
_STRAY_LT = re.compile(r"<(?!/?[a-zA-Z][\w:-]*>)")
_STRAY_AMP = re.compile(r"&(?!(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});)")
_LT, _AMP = "\ue000", "\ue001"
# html2text indents each nested list level, so 100,000 nested <ul> make quadratic output.
_NESTING = re.compile(r"<(/?)(?:ul|ol|dl|blockquote)>", re.I)
_MAX_NESTING = 20
# With ignore_tables html2text keeps rows but glues cells together: "ItemPrice".
_CELL_END = re.compile(r"</t[dh]>", re.I)
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>|])")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _drop_blocks(html: str) -> str:
    # find-based rather than a lazy ".*?" regex: an unclosed <script> costs one scan, not one
    # scan per opening tag.
    for opener, closer in _BLOCKS:
        out, pos = [], 0
        while match := opener.search(html, pos):
            out.append(html[pos : match.start()])
            tag = match.group(1) if match.groups() else ""
            end = re.compile(closer.format(tag), re.I).search(html, match.end())
            pos = end.end() if end else len(html)
        out.append(html[pos:])
        html = "".join(out)
    return html


def _cap_nesting(html: str) -> str:
    depth = 0

    def keep_shallow(match: re.Match[str]) -> str:
        nonlocal depth
        if match.group(1):
            keep, depth = 0 < depth <= _MAX_NESTING, max(depth - 1, 0)
        else:
            depth += 1
            keep = depth <= _MAX_NESTING
        return match.group(0) if keep else ""

    return _NESTING.sub(keep_shallow, html)


def _sanitize(html: str) -> str:
    """Markup html2text handles in linear time: bare tags, entities, text, nothing else."""
    html = _DATA_URI.sub("", _IMG.sub("", _drop_blocks(html)))
    html = _DECLARATIONS.sub("", _ATTRIBUTES.sub(r"<\1>", html))
    html = _STRAY_AMP.sub(_AMP, _STRAY_LT.sub(_LT, html.replace(_LT, "").replace(_AMP, "")))
    return _CELL_END.sub(r" \g<0>", _cap_nesting(html))


def html_to_text(html: str) -> str:
    """Readable text from HTML mail: no scripts, styles, images, data URIs or link targets.

    Link URLs are dropped because they inflate token counts without helping search; html2text
    never fetches anything, and images are removed before it sees them.
    """
    html = _sanitize(html)
    converter = html2text.HTML2Text(bodywidth=0)
    # Layout tables in markdown form ("| |", "---|---") are noise; rows as lines read better.
    for option in ("links", "images", "emphasis", "mailto_links", "tables"):
        setattr(converter, f"ignore_{option}", True)
    converter.unicode_snob = True
    try:
        text = converter.handle(html)
    except Exception:
        text = html_lib.unescape(re.sub(r"<[^<>]*>", " ", html))
    return _MD_ESCAPE.sub(r"\1", text).replace(_LT, "<").replace(_AMP, "&")


def clean_text(text: str) -> str:
    """Normalise newlines, drop control characters and trailing spaces, squeeze blank runs."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # isprintable() is C-speed; the regex only runs on the rare lines with controls or tabs.
    text = "\n".join(
        (line if line.isprintable() else _CONTROLS.sub("", line)).rstrip() for line in lines
    )
    return (_BLANK_RUNS.sub("\n\n", text) if "\n\n\n" in text else text).strip()
