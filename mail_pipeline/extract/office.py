"""Text from OOXML (docx, xlsx, pptx) and ODF (odt, ods, odp) files: zip containers of XML, read
with the standard library. The container is checked before anything is inflated (zip bombs) and
XML with a DTD is refused (entity expansion): neither format uses one."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from xml.etree.ElementTree import Element, iterparse

from mail_pipeline.extract.kinds import ExtractLimits, Job, Refused

Read = tuple[str, list[str]]
RATIO_CHECKED_ABOVE = 1024 * 1024  # small members compress oddly; only big ones can be bombs
_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)
_NUMBERED = re.compile(r"(\d+)\.xml$")


class Container:
    """A zip checked against the limits; members read with a shared inflation budget."""

    def __init__(self, data: bytes, limits: ExtractLimits):
        self.zip = zipfile.ZipFile(io.BytesIO(data))
        self.budget = limits.max_inflated_bytes
        members = self.zip.infolist()
        if len(members) > limits.max_zip_members:
            raise Refused(f"zip bomb refused ({len(members)} members)")
        declared = sum(member.file_size for member in members)
        if declared > limits.max_inflated_bytes:
            raise Refused(
                f"zip bomb refused (members declare {declared} bytes, limit {limits.max_inflated_bytes})"
            )
        for member in members:
            ratio = member.file_size / max(member.compress_size, 1)
            if member.file_size > RATIO_CHECKED_ABOVE and ratio > limits.max_zip_ratio:
                raise Refused(f"zip bomb refused ({member.filename} inflates {ratio:.0f}:1)")

    def names(self, pattern: str) -> list[str]:
        """Members matching `pattern`, numbered ones (slide2 before slide10) in number order."""
        found = [name for name in self.zip.namelist() if re.fullmatch(pattern, name)]
        return sorted(
            found, key=lambda name: (int(m.group(1)) if (m := _NUMBERED.search(name)) else 0, name)
        )

    def xml(self, name: str) -> Iterator[tuple[str, Element]]:
        """(event, element) of a member parsed as it streams; 'start' and 'end' events."""
        with self.zip.open(name) as member:
            # zipfile stops at the declared size; this bounds it anyway
            data = member.read(self.budget + 1)
        self.budget -= len(data)
        if self.budget < 0:
            raise Refused(f"zip bomb refused ({name} inflates past the declared sizes)")
        if _DTD.search(data):
            raise Refused(f"refused ({name} declares a DTD)")
        return iterparse(io.BytesIO(data), events=("start", "end"))


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class Text:
    """Text gathered up to a character budget; `full` once it has enough."""

    def __init__(self, limits: ExtractLimits):
        self.parts: list[str] = []
        self.size, self.limit = 0, limits.max_chars

    def add(self, piece: str) -> None:
        self.parts.append(piece)
        self.size += len(piece)

    @property
    def full(self) -> bool:
        return self.size > self.limit

    def __str__(self) -> str:
        return "".join(self.parts)


def _page_limit(pages: list[str], limits: ExtractLimits, what: str) -> tuple[list[str], list[str]]:
    if len(pages) <= limits.max_pages:
        return pages, []
    return pages[: limits.max_pages], [
        f"page limit (read {limits.max_pages} of {len(pages)} {what})"
    ]


def _runs(container: Container, name: str, out: Text) -> None:
    """WordprocessingML and DrawingML alike: text in <t>, paragraphs <p>, tabs and breaks."""
    for event, element in container.xml(name):
        if event != "end":
            continue
        tag = _local(element.tag)
        if tag == "t":
            out.add(element.text or "")
        elif tag == "tab":
            out.add("\t")
        elif tag in ("br", "cr"):
            out.add("\n")
        elif tag == "p":
            out.add("\n")
            element.clear()
            if out.full:
                return


def read_docx(job: Job, limits: ExtractLimits) -> Read:
    container, out = Container(job.data, limits), Text(limits)
    for name in ["word/document.xml", *container.names(r"word/(footnotes|endnotes)\.xml")]:
        if name in container.zip.namelist() and not out.full:
            _runs(container, name, out)
    return str(out), []


def read_pptx(job: Job, limits: ExtractLimits) -> Read:
    container, out = Container(job.data, limits), Text(limits)
    slides, reasons = _page_limit(container.names(r"ppt/slides/slide\d+\.xml"), limits, "slides")
    for name in slides:
        if out.full:
            break
        _runs(container, name, out)
        out.add("\n")
    return str(out), reasons


def _shared_strings(container: Container) -> list[str]:
    if "xl/sharedStrings.xml" not in container.zip.namelist():
        return []
    strings = []
    for event, element in container.xml("xl/sharedStrings.xml"):
        if event == "end" and _local(element.tag) == "si":
            strings.append("".join(t.text or "" for t in element.iter() if _local(t.tag) == "t"))
            element.clear()
    return strings


def _cell(element: Element, strings: list[str]) -> str:
    kind = element.get("t")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in element.iter() if _local(t.tag) == "t")
    value = next((v.text or "" for v in element if _local(v.tag) == "v"), "")
    if kind == "s":
        index = int(value) if value.isdigit() else -1
        return strings[index] if 0 <= index < len(strings) else ""
    return value


def read_xlsx(job: Job, limits: ExtractLimits) -> Read:
    """Rows as lines of tab-separated cells, sheet after sheet."""
    container, out = Container(job.data, limits), Text(limits)
    strings = _shared_strings(container)
    sheets, reasons = _page_limit(container.names(r"xl/worksheets/sheet\d+\.xml"), limits, "sheets")
    for name in sheets:
        row: list[str] = []
        for event, element in container.xml(name):
            tag = _local(element.tag) if event == "end" else ""
            if tag == "c":
                row.append(_cell(element, strings))
            elif tag == "row":
                out.add("\t".join(row) + "\n")
                row = []
                element.clear()
                if out.full:
                    return str(out), reasons
        out.add("\n")
    return str(out), reasons


def _odf_text(element: Element) -> str:
    """A paragraph's mixed content, with ODF's space, tab and line-break elements."""
    out = [element.text or ""]
    for child in element:
        tag = _local(child.tag)
        if tag == "s":
            count = next((v for k, v in child.attrib.items() if _local(k) == "c"), "1")
            out.append(" " * min(int(count) if count.isdigit() else 1, 100))
        elif tag == "tab":
            out.append("\t")
        elif tag == "line-break":
            out.append("\n")
        else:
            out.append(_odf_text(child))
        out.append(child.tail or "")
    return "".join(out)


ODF_PAGES = {"ods": ("table", "sheets"), "odp": ("page", "slides"), "odt": ("", "")}


def read_odf(job: Job, limits: ExtractLimits) -> Read:
    """Paragraphs and headings as lines; table cells joined by tabs, rows as lines."""
    container, out = Container(job.data, limits), Text(limits)
    page_tag, what = ODF_PAGES[job.kind]
    paragraph_depth = cell_depth = pages = 0
    for event, element in container.xml("content.xml"):
        tag = _local(element.tag)
        if tag == page_tag and event == "start":
            pages += 1
            if pages > limits.max_pages:
                return str(out), [f"page limit (read the first {limits.max_pages} {what})"]
        if tag in ("p", "h"):
            paragraph_depth += 1 if event == "start" else -1
            if event == "end" and paragraph_depth == 0:
                out.add(_odf_text(element) + (" " if cell_depth else "\n"))
                element.clear()
        elif tag == "table-cell" and event == "start":
            cell_depth += 1
        elif tag == "table-cell":
            cell_depth -= 1
            out.add("\t")
        elif tag == "table-row" and event == "end":
            out.add("\n")
        if out.full:
            break
    return str(out), []
