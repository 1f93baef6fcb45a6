"""What an extraction is given and gives back, its limits, and which attachments have text."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

_BY_EXTENSION = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".docm": "docx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".pptx": "pptx",
    ".pptm": "pptx",
    ".odt": "odt",
    ".ods": "ods",
    ".odp": "odp",
    ".txt": "text",
    ".text": "text",
    ".csv": "text",
    ".tsv": "text",
    ".md": "text",
    ".markdown": "text",
    ".log": "text",
    ".htm": "html",
    ".html": "html",
    ".ics": "ics",
}
_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."
_BY_TYPE = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    _OOXML + "wordprocessingml.document": "docx",
    _OOXML + "spreadsheetml.sheet": "xlsx",
    _OOXML + "presentationml.presentation": "pptx",
    _ODF + "text": "odt",
    _ODF + "spreadsheet": "ods",
    _ODF + "presentation": "odp",
    "text/plain": "text",
    "text/csv": "text",
    "text/tab-separated-values": "text",
    "text/markdown": "text",
    "text/x-markdown": "text",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/calendar": "ics",
    "application/ics": "ics",
}


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds per attachment; passing one cuts or stops its extraction and records a defect."""

    max_bytes: int = 10 * 1024 * 1024  # the attachment as decoded from its MIME part
    max_pages: int = 100  # PDF pages, slides, spreadsheet sheets
    max_chars: int = 100_000  # text kept, about 100 chunks to embed
    # Text kept from all of one email's attachments: 500 small files of 100,000 characters each
    # would otherwise cost some 50,000 chunks to embed.
    max_email_chars: int = 500_000
    timeout_s: float = 20.0
    memory_mb: int = 1024  # address space of a worker process
    # Zip containers (OOXML, ODF): refused before anything is inflated when the members declare
    # more than this in all, or one member over 1 MiB inflates more than `max_zip_ratio` times
    # (the ratio Apache POI's ZipSecureFile refuses).
    max_inflated_bytes: int = 64 * 1024 * 1024
    max_zip_ratio: int = 100
    max_zip_members: int = 10_000


@dataclass(frozen=True)
class Job:
    """One attachment to read: `kind` from `kind_of`, `data` its decoded bytes."""

    name: str
    kind: str
    data: bytes
    charset: str | None = None


@dataclass(frozen=True)
class Extracted:
    text: str
    # reasons, without the "attachment:<name>: " prefix
    defects: list[str] = field(default_factory=list)


class Refused(Exception):
    """The file is not read (or not further): a limit or a property of the file says so."""


def display_name(filename: str | None, content_type: str) -> str:
    """How defects and search hits name an attachment: its filename, else its type."""
    return filename or f"unnamed {content_type}"


def kind_of(filename: str | None, content_type: str) -> str | None:
    """The extractor for an attachment, by filename extension first (mail clients often send
    application/octet-stream), then by content type; None when it holds no text we read."""
    extension = posixpath.splitext((filename or "").lower().strip())[1]
    return _BY_EXTENSION.get(extension) or _BY_TYPE.get((content_type or "").lower())
