"""What the author wrote: a body without quoted lines, attributions, old history and signature.

Lines are judged one at a time, so in an interleaved reply every line the author wrote between
quotes is kept. Quoted (">") lines and attribution lines ("On ... wrote:", "Am ... schrieb ...:")
go wherever they are; an attribution followed by unquoted text, an Outlook header block
("From: ... Sent: ...") or "-----Original Message-----" starts old history, dropped to the end.
A signature ("-- ", RFC 3676 §4.3) or mobile footer is dropped up to a forwarded message, whose
content is kept: it is new to the thread. So is "history" with nothing written above it.
"""

from __future__ import annotations

import re

from mail_pipeline.message.text import clean_text

# Verbs mail clients put at the end of an attribution, in their common localisations; German
# "schrieb am <date>:" puts a date between verb and colon, "as you wrote in the doc:" does not.
_VERBS = (
    r"wrote|writes|schrieb|a écrit|escribió|escreveu|ha scritto|scrisse|schreef|skrev|kirjoitti"
    r"|napisał(?:\(a\)|a)?|pisze|napsal(?:\(a\)|a)?|yazdı|пишет|написал(?:\(а\)|а)?"
)
_VERB = rf"(?:(?<!\w)(?:{_VERBS})|写道|寫道|書きました|のメッセージ|작성)"
_OTHER_ENDS = (
    # Gmail in Russian, Japanese and others writes no verb: "<date> Name <addr>:".
    r"|<[^<>\s]+@[^<>\s]+>\)?\s*[:：]$"
    r"|\[[^\]]*\d[^\]]*\]\s*:$"  # mutt's "* Name <addr> [2009-11-22 10:00]:"
)
_END = re.compile(rf"{_VERB}(?:\s.{{0,60}}\d.{{0,20}})?\s*[:：]${_OTHER_ENDS}", re.I)
# After a trusted opening the name may follow the verb: "Am 03.03.2026 schrieb Klaus Meier:".
_END_TRUSTED = re.compile(rf"{_VERB}.{{0,80}}[:：]${_OTHER_ENDS}", re.I)
# How attributions begin; with one of these an attribution is trusted even when no quote follows.
_START = re.compile(
    r"(?:On|Am|Le|El|Em|Il giorno|Il|Op|Den|På|W dniu|Dne|Quoting|Zitat von|В|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}"
    r"|\d{4}\s*[年년]|在|於)(?:\s|$|\d)",
    re.I,
)
# Lotus Notes and some webmails put the name first and the date after the verb, then the old
# message unquoted: "Bob Smith/ACME wrote on 03/02/2026 10:15:20 AM:".
# A time of day tells it from "as I wrote on 2 March:".
_VERB_ON_DATE = re.compile(
    rf"(?<!\w)(?:{_VERBS})\s+(?:on|am|le|el|il|op|den)\s.*\d[:.]\d\d.*[:：]$", re.I
)
# what an attribution carries and a sentence that starts "On" rarely does
_DATED = re.compile(r"\d|@")
_WRAP_CONTINUES = ("<", "@", ",", "(", '"')
_ORIGINAL = re.compile(
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Messaggio originale|Oorspronkelijk bericht|Originalmeddelande|Oprindelig meddelelse"
    r"|Opprinnelig melding|Mensagem original|Исходное сообщение|Wiadomość oryginalna"
    r"|Alkuperäinen viesti|Původní zpráva|Özgün İleti|Eredeti üzenet|原始邮件|原始郵件|元のメッセージ"
    r"|원본 메시지)\s*-{2,}",
    re.I,
)
_FORWARD = re.compile(
    r"-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado"
    r"|Messaggio inoltrato|Doorgestuurd bericht|Vidarebefordrat meddelande|Videresendt meddelelse"
    r"|Videresendt melding|Mensagem encaminhada|Пересылаемое сообщение|Przekazana wiadomość"
    r"|Välitetty viesti|转发的邮件|轉寄的郵件|転送されたメッセージ).*"
    r"|(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht|Début du message réexpédié"
    r"|Inicio del mensaje reenviado|Inizio messaggio inoltrato|Begin doorgestuurd bericht)\s*[:：]",
    re.I,
)
_SIGNATURE = re.compile(
    r"--|Sent from my \S.*|Sent from (?:Mail|Outlook|Yahoo)\b.*|Get Outlook for \S.*"
    r"|Von meinem \S.* gesendet|Envoyé de mon \S.*|Enviado desde mi \S.*|Inviato da(?: mio)? \S.*"
    r"|Verzonden (?:vanaf|met) mijn \S.*|Skickat från min \S.*",
    re.I,
)
# Outlook's header block keys as its localisations write them.
_FROM_KEYS = (
    "From|Von|De|Da|Van|Från|Fra|От|Od|Lähettäjä|Kimden|Feladó|发件人|寄件者|差出人|보낸 사람"
)
_SENT_KEYS = (
    "Sent|Date|Gesendet|Datum|Envoyé|Enviado el|Enviado|Enviada em|Enviado em|Fecha|Data|Inviato"
    "|Verzonden|Skickat|Sendt|Отправлено|Дата|Wysłano|Odesláno|Lähetetty|Tarih|Gönderildi|Elküldve"
    "|发送时间|發送時間|寄件日期|日期|送信日時|日付|보낸 날짜"
)
_TO_KEYS = "To|An|À|A|Para|Aan|Till|Til|Кому|Do|Komu|Vastaanottaja|Kime|Címzett|收件人|收件者|宛先|받는 사람"
_SUBJECT_KEYS = (
    "Subject|Betreff|Objet|Asunto|Assunto|Oggetto|Onderwerp|Ämne|Emne|Тема|Temat|Předmět|Aihe|Konu"
    "|Tárgy|主题|主旨|件名|제목"
)
_HEADER_LINE = re.compile(
    rf"\*?(?:(?P<from>{_FROM_KEYS})|(?P<sent>{_SENT_KEYS})|{_TO_KEYS}|{_SUBJECT_KEYS}|Cc|Kopie|Reply-To)"
    r"\*?\s*[:：]",
    re.I,
)
# The same block flattened onto one line, as some HTML-to-text conversions leave it.
_FLAT_HEADERS = re.compile(
    rf"\*?(?:{_FROM_KEYS}|{_SENT_KEYS})\*?\s*[:：].{{1,300}}?\s\*?(?:{_TO_KEYS})\*?\s*[:：]"
    rf".{{0,300}}?\s\*?(?:{_SUBJECT_KEYS})\*?\s*[:：]",
    re.I,
)
_SEPARATOR = re.compile(r"[\s_\-=*]*")
# First four characters of the mobile footers and Apple Mail forward lines above, lowercased.
_MARKER_WORDS = frozenset(("sent", "get ", "von ", "envo", "envi", "invi", "verz", "skic", "begi", "anfa",
                           "débu", "inic", "iniz"))  # fmt: skip
_POSTSCRIPT = re.compile(r"P\.?(?:P\.?)?S\b\.?", re.I)
_COLONS = (":", "：")
_NO_BREAK = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2007": " "})
# A Python prompt with code after it, as technical mail pastes sessions: the author's, not a
# third quote level (that reads "> >>> ..." when quoted, and prose at ">>> " is not code).
_REPL = re.compile(
    r">>> (?:import |from \S+ import |def |class |print\(|for |while |if |with |return |[\w.\[\]]+\s*[=(])"
)
_FOOTER_LIST = re.compile(r".*\bmailing list\b.*", re.I)  # Mailman's footer after "____"


def _plain(line: str) -> str:
    """The line stripped, with no-break spaces as spaces: French clients write "a écrit :" with
    U+00A0 or U+202F, Gmail puts U+202F before "AM"."""
    return line.strip().translate(_NO_BREAK)


def _quoted(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith(">") and not (stripped.startswith(">>> ") and _REPL.match(stripped))


def _header_block(lines: list[str], index: int) -> bool:
    """An Outlook-style block: "From:" then, within four lines, a date line and one more header
    (or all of them on one line)."""
    match = _HEADER_LINE.match(_plain(lines[index]))
    if not match or not (match.group("from") or match.group("sent")):
        return False
    if _FLAT_HEADERS.match(_plain(lines[index])):
        return True
    if not match.group("from"):
        return False
    below = [m for line in lines[index + 1 : index + 5] if (m := _HEADER_LINE.match(_plain(line)))]
    return len(below) >= 2 and any(m.group("sent") for m in below)


def _next_text(lines: list[str], index: int) -> str | None:
    # By index: lines[index:] (and islice) would walk the rest of the body for every attribution.
    for position in range(index, len(lines)):
        if lines[position].strip():
            return lines[position]
    return None


def _attribution(lines: list[str], end: int) -> int | None:
    """First line of the attribution ending on line ``end``, or None when it is not one."""
    follows = _next_text(lines, end + 1)
    quote_follows = follows is None or _quoted(follows)
    spans = []  # (first line, opening trusted): trusted openings first, then the shortest first
    for trusted in (True, False):
        for first in range(end, max(end - 3, -1), -1):
            head = lines[first].strip()
            if first < end and (not head or _quoted(head) or head[-1] in ".!?:"):
                break
            if first < end and not trusted and not head.endswith(_WRAP_CONTINUES):
                break
            spans.append((first, trusted))
    for first, trusted in spans:
        joined = " ".join(_plain(line) for line in lines[first : end + 1])
        if len(joined) > 300:
            continue
        if (trusted and (_START.match(joined) or _VERB_ON_DATE.search(joined)) and _END_TRUSTED.search(joined)
                and (quote_follows or _DATED.search(joined))):  # fmt: skip
            return first
        if not trusted and quote_follows and _END.search(joined):
            return first
    return None


def _signature_start(lines: list[str], index: int) -> bool:
    line = _plain(lines[index])
    if _SIGNATURE.fullmatch(line):  # "-- " arrives as "--" once trailing spaces are trimmed
        return True
    follows = lines[index + 1] if index + 1 < len(lines) else ""
    return len(line) > 20 and set(line) == {"_"} and bool(_FOOTER_LIST.fullmatch(follows.strip()))


def _drop_trailing_separators(kept: list[str]) -> None:
    while kept and _SEPARATOR.fullmatch(kept[-1]):
        kept.pop()


def _maybe_marker(stripped: str) -> bool:
    """Cheap test that every marker line passes: a dash or underscore, a colon near the start
    (header keys), or a footer's first word; most lines are prose and stop here."""
    head = stripped[:20]
    return (head[0] in "-_*" or ":" in head or "：" in head or head[:4].lower() in _MARKER_WORDS
            or head[:2].upper() in ("PS", "P."))  # fmt: skip


def _attribution_ends(lines: list[str]) -> dict[int, int]:
    """First line -> last line of each attribution (only lines ending in a colon can end one)."""
    spans: dict[int, int] = {}
    for end, line in enumerate(lines):
        if not line.rstrip().endswith(_COLONS):
            continue
        # A quoted end too: a hard wrap can put "> a écrit :" under "Le ... <addr".
        if (first := _attribution(lines, end)) is not None and not _quoted(lines[first]):
            spans[first] = end
    return spans


def _wrote_nothing(kept: list[str]) -> bool:
    # History with nothing above it is a forward whatever the subject says: its text is found
    # nowhere else in the mailbox, so it is kept rather than leaving the message unfindable.
    return not any(line.strip() for line in kept)


def _marker(lines: list[str], index: int, state: str, forwarded: bool) -> str:
    """The state after a line that may open forwarded content, old history or a signature."""
    stripped = _plain(lines[index])
    if state != "forward" and (_FORWARD.fullmatch(stripped) or (forwarded and (
            _ORIGINAL.fullmatch(stripped) or _header_block(lines, index)))):  # fmt: skip
        return "forward"
    if state == "own" and (_ORIGINAL.fullmatch(stripped) or _header_block(lines, index)):
        return "history"
    if state == "own" and _signature_start(lines, index):
        return "signature"
    if state == "signature" and _POSTSCRIPT.match(stripped):
        return "own"  # a "PS:" below the signature is the author's again
    return state


def strip_quotes_and_signature(text: str, forwarded: bool = False) -> str:
    """The lines the author wrote, and forwarded content; ``forwarded``: the subject says Fwd.

    With ``forwarded``, an Outlook header block or "Original Message" line opens forwarded
    content (Outlook forwards look exactly like its reply history) rather than old history.
    """
    lines = text.split("\n")
    spans = _attribution_ends(lines)
    kept: list[str] = []
    state, skip_to = "own", -1
    for index, line in enumerate(lines):
        stripped = line.strip()
        if index <= skip_to or (stripped.startswith(">") and _quoted(stripped)):
            continue
        if index in spans:
            skip_to = spans[index]
            follows = _next_text(lines, skip_to + 1)
            if state == "own" and follows is not None and not _quoted(follows):
                if _wrote_nothing(kept):
                    state = "forward"
                    continue
                break  # "On ... wrote:" and the old message, unquoted: history to the end
            continue
        if stripped and _maybe_marker(stripped):
            before, state = state, _marker(lines, index, state, forwarded or _wrote_nothing(kept))
            if state == "history":
                break
            if state == "forward" and before != "forward":
                _drop_trailing_separators(kept)
                kept.append("")  # forwarded content is a paragraph of its own
                if not _header_block(lines, index):
                    continue
        if state in ("own", "forward"):
            kept.append(line)
    _drop_trailing_separators(kept)
    return clean_text("\n".join(kept))
