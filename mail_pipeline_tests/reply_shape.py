"""One labelled reply: its lines, its body, and the raw message it is sent as.

``+`` the author wrote it (must be in search_text), ``-`` quoted, attribution, old history or
signature (must not be), ``~`` neither (separators, forward markers: not counted). Lines keep
the shape real clients give them: Gmail, Thunderbird, mutt, Outlook, Apple Mail, in several
languages. ``hard`` marks messages that plain text cannot decide; they count in the shares but
have no per-message assertion.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    name: str
    subject: str
    labelled: str
    html: bool = False  # sent as text/html with <blockquote> quotes, as Gmail and Outlook do
    hard: bool = False

    def lines(self) -> list[tuple[str, str]]:
        """(label, line) for every non-blank line."""
        out = []
        for line in textwrap.dedent(self.labelled).strip("\n").split("\n"):
            if line.strip():
                assert line[:2] in ("+ ", "- ", "~ "), line
                out.append((line[0], line[2:]))
        return out

    def body(self) -> str:
        return "\n".join(
            line[2:] for line in textwrap.dedent(self.labelled).strip("\n").split("\n")
        )

    def raw(self, index: int) -> bytes:
        if self.html:
            ctype, body = "text/html", _as_html(self.body())
        else:
            ctype, body = "text/plain", self.body()
        head = (
            f"From: Author {index} <author{index}@lists.example.org>\nTo: dev@lists.example.org\n"
            f"Subject: {self.subject}\nDate: Tue, 03 Mar 2026 14:05:00 +0100\n"
            f"Message-ID: <reply-{index}@lists.example.org>\nMIME-Version: 1.0\n"
            f"Content-Type: {ctype}; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        )
        return (head + body + "\n").replace("\n", "\r\n").encode("utf-8")


def _as_html(text: str) -> str:
    """Gmail-style HTML: one <div> per line, each quote level a nested <blockquote>."""
    out, depth = ["<html><body>"], 0
    for line in text.split("\n"):
        stripped = line.lstrip()
        level = stripped.count(">", 0, len(stripped) - len(stripped.lstrip("> ")))
        content = stripped.lstrip("> ") if level else line
        out += ["<blockquote>"] * (level - depth) + ["</blockquote>"] * (depth - level)
        depth = level
        out.append(f"<div>{html.escape(content) or '<br>'}</div>")
    return "".join(out + ["</blockquote>"] * depth + ["</body></html>"])
