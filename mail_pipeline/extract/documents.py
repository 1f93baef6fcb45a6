"""Text from one attachment's bytes, by kind: PDF (pypdf), text, HTML, calendar; office files in
office.py. Runs inside a worker process (pool.py); `extract` never raises."""

from __future__ import annotations

import io
import logging
import re
from typing import TYPE_CHECKING

from mail_pipeline.extract import office
from mail_pipeline.extract.kinds import Extracted, ExtractLimits, Job, Refused
from mail_pipeline.message import text as mtext

if TYPE_CHECKING:
    from pypdf import PdfReader

Read = tuple[str, list[str]]  # (text, defect reasons)
# PDF 2.0 (ISO 32000-2) 7.5.5: the file ends with %%EOF; readers accept trailing junk, so look
# this far back for it.
EOF_WINDOW = 64 * 1024


def extract(job: Job, limits: ExtractLimits) -> Extracted:
    """The attachment's text, cut at `limits.max_chars`; a reason for each limit met or failure."""
    if len(job.data) > limits.max_bytes:
        return Extracted("", [f"over the size limit ({len(job.data)} bytes > {limits.max_bytes})"])
    try:
        text, reasons = READERS[job.kind](job, limits)
    except Refused as refused:
        return Extracted("", [str(refused)])
    except MemoryError:
        return Extracted("", [f"over the memory limit ({limits.memory_mb} MB)"])
    except RecursionError:
        return Extracted("", ["unreadable (nested too deeply)"])
    except Exception as error:
        return Extracted("", [f"unreadable ({type(error).__name__}: {str(error)[:80]})"])
    text = mtext.clean_text(text)
    if len(text) > limits.max_chars:
        text = text[: limits.max_chars]
        reasons = [*reasons, f"text cut at {limits.max_chars} characters"]
    return Extracted(text, reasons)


def read_pdf(job: Job, limits: ExtractLimits) -> Read:
    from pypdf import PdfReader

    # A file with no end marker is truncated or not a PDF; pypdf would scan all of it to rebuild
    # the cross-reference table (0.6 s for 500 KB of noise) to find nothing.
    if b"%%EOF" not in job.data[-EOF_WINDOW:]:
        raise Refused("unreadable (not a complete PDF: no %%EOF marker)")
    # Broken PDFs make pypdf log a warning per repair; the defect says what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(io.BytesIO(job.data))
    if reader.is_encrypted and not _decrypts(reader):
        raise Refused("encrypted")
    pages, texts, size, reasons = len(reader.pages), [], 0, []
    for number, page in enumerate(reader.pages):
        if number == limits.max_pages:
            reasons.append(f"page limit (read {limits.max_pages} of {pages} pages)")
            break
        texts.append(page.extract_text() or "")
        size += len(texts[-1])
        if size > limits.max_chars:
            break
    return "\n\n".join(texts), reasons


def _decrypts(reader: PdfReader) -> bool:
    """PDFs encrypted with an empty user password (print or copy restrictions only) open."""
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _decoded(job: Job) -> str:
    # The declared charset, then UTF-8 and cp1252: a charset guess is no defect of the email.
    return mtext.decode_bytes(job.data, job.charset or "utf-8")[0]


def read_text(job: Job, limits: ExtractLimits) -> Read:
    return _decoded(job), []


def read_html(job: Job, limits: ExtractLimits) -> Read:
    return mtext.html_to_text(_decoded(job)), []


# RFC 5545 §3.1: a line starting with a space or tab continues the previous one.
_FOLD = re.compile(r"\r?\n[ \t]")
_ICS_FIELDS = {
    "SUMMARY": "Summary",
    "DESCRIPTION": "Description",
    "LOCATION": "Location",
    "DTSTART": "Starts",
    "DTEND": "Ends",
    "ORGANIZER": "Organizer",
    "ATTENDEE": "Attendee",
    "COMMENT": "Comment",
}
_ICS_ESCAPE = re.compile(r"\\([\\;,nN])")
_CN = re.compile(r';CN="?([^";:]*)"?', re.I)


def read_ics(job: Job, limits: ExtractLimits) -> Read:
    """The people, places, times and words of each event (RFC 5545 content lines)."""
    lines: list[str] = []
    for line in _FOLD.sub("", _decoded(job)).splitlines():
        name_params, _, value = line.partition(":")
        name = name_params.split(";", 1)[0].upper()
        if name == "BEGIN" and value.upper() in ("VEVENT", "VTODO", "VJOURNAL") and lines:
            lines.append("")
        if name not in _ICS_FIELDS:
            continue
        if name in ("ORGANIZER", "ATTENDEE"):
            person = _CN.search(name_params)
            value = " ".join(
                filter(None, [person.group(1) if person else "", value.removeprefix("mailto:")])
            )
        value = _ICS_ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)
        lines.append(f"{_ICS_FIELDS[name]}: {value.strip()}")
    return "\n".join(lines), []


READERS = {
    "pdf": read_pdf,
    "text": read_text,
    "html": read_html,
    "ics": read_ics,
    "docx": office.read_docx,
    "xlsx": office.read_xlsx,
    "pptx": office.read_pptx,
    "odt": office.read_odf,
    "ods": office.read_odf,
    "odp": office.read_odf,
}
