"""Small real attachment files built in the tests: PDFs with fpdf2, office files as the zip +
XML packages their standards define, and a mail message that carries them."""

from __future__ import annotations

import io
import zipfile
import zlib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from xml.sax.saxutils import escape

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from mail_pipeline.demo.pdf import write_objects

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
A = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
P = 'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'
S = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
)
ODF_TYPES = {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}


def pdf(*pages: str) -> bytes:
    document = FPDF()
    document.set_font("Helvetica", size=11)
    for text in pages:
        document.add_page()
        document.multi_cell(0, 8, text)
    return bytes(document.output())


def encrypted_pdf(text: str, user_password: str) -> bytes:
    """`pdf(text)` encrypted with AES-256; an empty user password opens it, restricted."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(text))))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_bomb(inflated: int = 128 * 1024 * 1024) -> bytes:
    """A one-page PDF whose content stream inflates `inflated` bytes from about a thousandth of that."""
    deflate = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    stream = deflate.compress(b"BT /F1 12 Tf 72 740 Td (boom) Tj ET\n")
    stream += (
        b"".join(deflate.compress(block) for _ in range(inflated // len(block))) + deflate.flush()
    )
    return write_objects(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def _zip(members: dict[str, str | bytes], *, first: tuple[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if first:  # ODF: "mimetype" first and stored (ODF 1.2 part 3, 3.3)
            archive.writestr(zipfile.ZipInfo(first[0]), first[1], compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _content_types(main: str, part: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        f'content-types"><Override PartName="{part}" ContentType="{main}"/></Types>'
    )


def docx(*paragraphs: str) -> bytes:
    body = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    document = f'<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>{body}</w:body></w:document>'
    return _zip(
        {
            "[Content_Types].xml": _content_types(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
                "/word/document.xml",
            ),
            "word/document.xml": document,
        }
    )


def pptx(*slides: str) -> bytes:
    members = {
        "[Content_Types].xml": _content_types(
            "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
            "/ppt/presentation.xml",
        )
    }
    for number, text in enumerate(slides, 1):
        members[f"ppt/slides/slide{number}.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><p:sld {P} {A}><p:cSld><p:spTree><p:sp><p:txBody>'
            f"<a:p><a:r><a:t>{escape(text)}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
        )
    return _zip(members)


def xlsx(rows: list[list[str | int]]) -> bytes:
    """One sheet; strings shared (t="s"), numbers as values."""
    strings = sorted({cell for row in rows for cell in row if isinstance(cell, str)})
    cells = "".join(
        f'<row r="{r}">'
        + "".join(
            f'<c r="{chr(65 + c)}{r}" t="s"><v>{strings.index(v)}</v></c>'
            if isinstance(v, str)
            else f'<c r="{chr(65 + c)}{r}"><v>{v}</v></c>'
            for c, v in enumerate(row)
        )
        + "</row>"
        for r, row in enumerate(rows, 1)
    )
    shared = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    return _zip(
        {
            "[Content_Types].xml": _content_types(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                "/xl/workbook.xml",
            ),
            "xl/sharedStrings.xml": f'<?xml version="1.0" encoding="UTF-8"?><sst {S}>{shared}</sst>',
            "xl/worksheets/sheet1.xml": f'<?xml version="1.0" encoding="UTF-8"?><worksheet {S}><sheetData>{cells}'
            "</sheetData></worksheet>",
        }
    )


def odf(kind: str, body: str) -> bytes:
    """An ODF package of `kind` (odt, ods, odp) whose office:body holds `body` (ODF markup)."""
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODF_NS} office:version="1.3">'
        f"<office:body><office:{ODF_TYPES[kind]}>{body}</office:{ODF_TYPES[kind]}></office:body>"
        "</office:document-content>"
    )
    return _zip(
        {"content.xml": content},
        first=("mimetype", f"application/vnd.oasis.opendocument.{ODF_TYPES[kind]}"),
    )


def zip_bomb_docx(inflated: int = 64 * 1024 * 1024) -> bytes:
    """A .docx whose document inflates `inflated` bytes of nothing from a few dozen kilobytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as member,
    ):
        block = b" " * (1024 * 1024)
        for _ in range(inflated // len(block)):
            member.write(block)
    return out.getvalue()


def mail_with_attachments(
    uid_hint: str,
    when: datetime,
    subject: str,
    body: str,
    attachments: list[tuple[str, str, bytes]],
) -> bytes:
    """A multipart/mixed message: the text body, then each (filename, content type, bytes)."""
    message = EmailMessage()
    message["Message-ID"] = f"<{uid_hint}@example.test>"
    message["Date"] = format_datetime(when)
    message["From"] = "Carol <carol@example.test>"
    message["To"] = "Alice <alice@example.test>"
    message["Subject"] = subject
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()
