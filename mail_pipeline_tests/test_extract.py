"""Attachment text extraction, format by format, on small real files built here; and the limits."""

from __future__ import annotations

import io
import zipfile

import pytest

from mail_pipeline.extract.documents import extract
from mail_pipeline.extract.kinds import Extracted, ExtractLimits, Job, kind_of
from mail_pipeline_tests.attachment_files import (
    W,
    docx,
    encrypted_pdf,
    odf,
    pdf,
    pdf_bomb,
    pptx,
    xlsx,
    zip_bomb_docx,
)

LIMITS = ExtractLimits()
ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//EN\r\nBEGIN:VEVENT\r\nUID:1@example.test\r\n"
    "DTSTART:20270303T090000Z\r\nSUMMARY:Turbine inspection\\, north wing\r\n"
    "LOCATION:Hall 7\r\nORGANIZER;CN=Dana Ortiz:mailto:dana@example.test\r\n"
    "DESCRIPTION:Bring the torque wrench.\\nParking at gate B is reser\r\n ved for us.\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def read(kind: str, data: bytes, limits: ExtractLimits = LIMITS, charset: str | None = None):
    return extract(Job(f"file.{kind}", kind, data, charset), limits)


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "pdf",
            pdf("The turbine contract renews on 3 March 2027.", "Second page: penalty clause 14b."),
            ["The turbine contract renews on 3 March 2027.", "Second page: penalty clause 14b."],
        ),
        (
            "docx",
            docx("Statement of work for Globex.", "Payment within 45 days."),
            ["Statement of work for Globex.\nPayment within 45 days."],
        ),
        (
            "pptx",
            pptx(*[f"Slide number {n}" for n in range(1, 12)]),
            ["Slide number 2\n", "Slide number 11"],
        ),
        (
            "xlsx",
            xlsx([["Item", "Amount"], ["Gearbox overhaul", 18250]]),
            ["Item\tAmount\nGearbox overhaul\t18250"],
        ),
        (
            "odt",
            odf(
                "odt",
                "<text:h>Minutes</text:h><text:p>Budget<text:s text:c='2'/>approved<text:tab/>unanimously"
                "<text:line-break/>next meeting in May</text:p>",
            ),
            ["Minutes\nBudget  approved\tunanimously\nnext meeting in May"],
        ),
        (
            "ods",
            odf(
                "ods",
                "<table:table><table:table-row><table:table-cell><text:p>Warehouse</text:p></table:table-cell>"
                "<table:table-cell><text:p>Rotterdam</text:p></table:table-cell></table:table-row></table:table>",
            ),
            ["Warehouse \tRotterdam"],
        ),
        (
            "odp",
            odf(
                "odp",
                "<draw:page><draw:frame><draw:text-box><text:p>Quarterly roadmap</text:p></draw:text-box>"
                "</draw:frame></draw:page>",
            ),
            ["Quarterly roadmap"],
        ),
        ("text", b"Order;Qty\nA-17;3\n", ["Order;Qty\nA-17;3"]),
        (
            "html",
            b"<html><head><style>p{}</style></head><body><p>Tickets for <b>Lisbon</b> are booked</p>"
            b"<script>alert(1)</script></body></html>",
            ["Tickets for Lisbon are booked"],
        ),
        (
            "ics",
            ICS.encode(),
            [
                "Summary: Turbine inspection, north wing",
                "Location: Hall 7",
                "Organizer: Dana Ortiz dana@example.test",
                "Description: Bring the torque wrench.\nParking at gate B is reserved for us.",
                "Starts: 20270303T090000Z",
            ],
        ),
    ],
)
def test_each_format_gives_its_text(kind, data, expected):
    result = read(kind, data)
    assert result.defects == []
    for piece in expected:
        assert piece in result.text
    assert "alert" not in result.text and "{}" not in result.text


def test_text_uses_the_declared_charset():
    assert (
        read("text", "Grüße aus Köln".encode("iso-8859-1"), charset="iso-8859-1").text
        == "Grüße aus Köln"
    )
    assert read("text", "Grüße aus Köln".encode()).text == "Grüße aus Köln"


@pytest.mark.parametrize(
    ("filename", "content_type", "kind"),
    [
        ("Invoice.PDF", "application/octet-stream", "pdf"),
        (None, "application/pdf", "pdf"),
        ("notes.md", "application/octet-stream", "text"),
        ("plan.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ("invite.ics", "text/calendar", "ics"),
        (None, "application/vnd.oasis.opendocument.presentation", "odp"),
        ("photo.jpg", "image/jpeg", None),
        ("archive.zip", "application/zip", None),
    ],
)
def test_kind_of(filename, content_type, kind):
    assert kind_of(filename, content_type) == kind


def test_pdf_page_limit_keeps_the_first_pages():
    data = pdf(*[f"Page {n} says hello." for n in range(1, 201)])
    result = read("pdf", data)
    assert result.defects == ["page limit (read 100 of 200 pages)"]
    assert "Page 100 says hello." in result.text and "Page 101 " not in result.text


def test_encrypted_pdfs_open_only_without_a_user_password():
    assert read("pdf", encrypted_pdf("Restricted but readable.", "")) == Extracted(
        "Restricted but readable."
    )
    assert read("pdf", encrypted_pdf("Private.", "secret")).defects == ["encrypted"]


def test_slides_and_sheets_count_as_pages():
    result = read("pptx", pptx("one", "two", "three"), ExtractLimits(max_pages=2))
    assert result.defects == ["page limit (read 2 of 3 slides)"] and "three" not in result.text
    sheets = "<table:table><table:table-row><table:table-cell><text:p>{}</text:p></table:table-cell></table:table-row></table:table>"
    result = read(
        "ods",
        odf("ods", "".join(sheets.format(n) for n in ("alpha", "beta", "gamma"))),
        ExtractLimits(max_pages=2),
    )
    assert (
        result.defects == ["page limit (read the first 2 sheets)"]
        and "beta" in result.text
        and "gamma" not in result.text
    )


def test_output_is_cut_at_max_chars():
    result = read("text", ("word " * 1000).encode(), ExtractLimits(max_chars=100))
    assert len(result.text) == 100 and result.defects == ["text cut at 100 characters"]


@pytest.mark.parametrize(
    ("kind", "data", "reason"),
    [
        ("pdf", pdf("fine")[:300], "unreadable (not a complete PDF: no %%EOF marker)"),
        ("pdf", b"%PDF-1.7\ngarbage\n%%EOF\n", "unreadable (PdfReadError: startxref not found)"),
        ("docx", b"PK\x03\x04 truncated", "unreadable (BadZipFile"),
        ("xlsx", docx("a zip, but no workbook"), ""),
    ],
)
def test_corrupt_files_give_a_reason_not_an_exception(kind, data, reason):
    result = read(kind, data)
    assert result.text == ""
    assert result.defects[0].startswith(reason) if reason else result.defects == []


def test_over_the_size_limit_is_not_read():
    result = read("text", b"x" * 2000, ExtractLimits(max_bytes=1000))
    assert result == Extracted("", ["over the size limit (2000 bytes > 1000)"])


def test_zip_bomb_is_refused_by_its_ratio_before_inflating():
    bomb = zip_bomb_docx(64 * 1024 * 1024)
    assert len(bomb) < 200_000
    result = read("docx", bomb, ExtractLimits(max_inflated_bytes=1024**3))
    assert result.text == "" and result.defects[0].startswith(
        "zip bomb refused (word/document.xml inflates"
    )


def test_zip_bomb_is_refused_by_its_declared_size():
    result = read("docx", docx("small"), ExtractLimits(max_inflated_bytes=100))
    assert result.defects[0].startswith("zip bomb refused (members declare")


def test_a_member_lying_about_its_size_inflates_no_further():
    """Declared sizes are the sender's to write: a member claiming 100 bytes yields no more than
    that, and the mismatch is a defect."""
    honest = docx("x" * 5000)
    real = len(zipfile.ZipFile(io.BytesIO(honest)).read("word/document.xml"))
    lying = honest.replace(real.to_bytes(4, "little"), (100).to_bytes(4, "little"))  # both headers
    result = read("docx", lying)
    assert result.text == "" and result.defects == [
        "unreadable (BadZipFile: Bad CRC-32 for file 'word/document.xml')"
    ]


def test_a_pdf_stream_inflating_past_pypdfs_limit_is_stopped():
    bomb = pdf_bomb()
    assert len(bomb) < 300_000
    result = read("pdf", bomb)
    assert result.text == "" and result.defects[0].startswith(
        "unreadable (LimitReachedError: Limit reached while decompressing"
    )


def test_xml_with_a_dtd_is_refused():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        f"<w:document {W}>"
        "<w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>"
    )
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("word/document.xml", laughs)
    result = read("docx", data.getvalue())
    assert result.text == "" and result.defects == ["refused (word/document.xml declares a DTD)"]
