"""Small hand-made messages for tests that need to know exactly what is in the mailbox."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime


def message(
    uid_hint: str,
    when: datetime,
    *,
    subject: str | None = None,
    body: str | None = None,
    sender: str = "Carol <carol@example.test>",
    extra_headers: str = "",
) -> bytes:
    subject = subject or f"Test message {uid_hint}"
    body = body or f"Hello, this is message {uid_hint}.\r\nRegards,\r\nCarol\r\n"
    return (
        f"Message-ID: <{uid_hint}@example.test>\r\n"
        f"Date: {format_datetime(when)}\r\n"
        f"From: {sender}\r\n"
        f"To: Alice <alice@example.test>\r\n"
        f"Subject: {subject}\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"{extra_headers}"
        f"\r\n{body}"
    ).encode()
