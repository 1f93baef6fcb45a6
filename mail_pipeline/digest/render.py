"""A digest as Markdown (the preview, the asset's metadata, the mail's plain part) and as HTML
(the mail's rich part): each item links to its email on the search page."""

from __future__ import annotations

import html
from urllib.parse import quote

from mail_pipeline.digest.build import SECTIONS, Digest, DigestItem


def email_link(base_url: str, account: str, email_id: str) -> str:
    """The search page opened on one email (page.js reads the fragment)."""
    return f"{base_url.rstrip('/')}/#email={quote(email_id, safe='')}&account={quote(account, safe='')}"


def title(digest: Digest) -> str:
    span = (
        digest.last.isoformat()
        if digest.first == digest.last
        else f"{digest.first.isoformat()} to {digest.last.isoformat()}"
    )
    return f"Mail digest for {digest.account}, {span}"


def _when(item: DigestItem) -> str:
    return item.message_at.strftime("%Y-%m-%d %H:%M") if item.message_at else ""


def _md_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in text)


def markdown(digest: Digest, base_url: str) -> str:
    lines = [f"# {title(digest)}", ""]
    for section, heading in SECTIONS.items():
        items = digest.section(section)
        lines += [f"## {heading} ({len(items)})", ""]
        for item in items:
            link = email_link(base_url, digest.account, item.email_id)
            detail = f" ({_md_escape(item.detail)})" if item.detail else ""
            lines.append(
                f"- [{_md_escape(item.subject or '(no subject)')}]({link}) from "
                f"{_md_escape(item.sender)}, {_when(item)}{detail}"
            )
            if item.extract:
                lines.append(f"  > {_md_escape(item.extract)}")
        lines += ["_nothing_", ""] if not items else [""]
    return "\n".join(lines)


def html_page(digest: Digest, base_url: str) -> str:
    esc = html.escape
    parts = [f"<h1>{esc(title(digest))}</h1>"]
    for section, heading in SECTIONS.items():
        items = digest.section(section)
        parts.append(f"<h2>{esc(heading)} ({len(items)})</h2>")
        if not items:
            parts.append("<p><em>nothing</em></p>")
            continue
        parts.append("<ul>")
        for item in items:
            link = esc(email_link(base_url, digest.account, item.email_id), quote=True)
            detail = f" ({esc(item.detail)})" if item.detail else ""
            parts.append(
                f'<li><a href="{link}">{esc(item.subject or "(no subject)")}</a> from '
                f"{esc(item.sender)}, {esc(_when(item))}{detail}"
                + (f"<br><q>{esc(item.extract)}</q>" if item.extract else "")
                + "</li>"
            )
        parts.append("</ul>")
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{esc(title(digest))}</title></head>\n<body>\n{body}\n</body></html>\n"
    )
