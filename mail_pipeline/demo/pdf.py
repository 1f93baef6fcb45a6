"""One-page PDFs with a real text layer, for the synthetic mailbox's PDF attachments: written by
hand (catalog, pages, one page, its content stream, Helvetica; ISO 32000-1 section 7) and padded
to the drawn size with an unreferenced stream, so the mailbox keeps its attachment sizes."""

from __future__ import annotations


def _escape(line: str) -> bytes:
    # Literal strings (7.3.4.2): backslash and parentheses escaped; WinAnsi covers Latin-1.
    text = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return text.encode("latin-1", "replace")


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)


def text_pdf(lines: list[str], size: int, filler: bytes) -> bytes:
    """A PDF showing `lines`, about `size` bytes long (at least its text needs), padded with `filler`."""
    content = (
        b"BT /F1 12 Tf 16 TL 72 740 Td "
        + b" ".join(b"(%s) Tj T*" % _escape(line) for line in lines)
        + b" ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        _stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    bare = len(write_objects([*objects, _stream(b"")]))
    return write_objects([*objects, _stream(filler[: max(0, size - bare)])])


def write_objects(objects: list[bytes]) -> bytes:
    """A PDF file of these objects (numbered from 1, the first the catalog), with its xref table."""
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
