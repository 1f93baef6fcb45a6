"""Sending a digest by SMTP submission: STARTTLS on port 587 or implicit TLS on 465 (RFC 8314),
with certificate verification; the password is decrypted by the caller just before sending."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

SMTP_SECURITY = ("starttls", "tls")
TIMEOUT_S = 30


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # one of SMTP_SECURITY
    username: str
    sender: str
    recipients: tuple[str, ...]
    ca_file: str | None = None
    password: str = field(default="", repr=False)


class DeliveryError(Exception):
    """The digest could not be sent: the message says where and why (never the password)."""


def digest_message(settings: SmtpSettings, subject: str, text: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = settings.sender, ", ".join(settings.recipients)
    message["Subject"], message["Date"] = subject, formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Submit `message` to the recipients; DeliveryError on any failure."""
    if settings.security not in SMTP_SECURITY:
        raise DeliveryError(f"SMTP security must be one of {', '.join(SMTP_SECURITY)}")
    context = ssl.create_default_context(cafile=settings.ca_file)
    where = f"{settings.host}:{settings.port}"
    try:
        if settings.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=TIMEOUT_S, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_S)
        with client:
            if settings.security == "starttls":
                client.starttls(context=context)
            if settings.username:
                client.login(settings.username, settings.password)
            client.send_message(message, to_addrs=list(settings.recipients))
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryError(f"SMTP sign-in refused by {where} (code {error.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(
            f"sending the digest through {where} failed: {type(error).__name__}"
        ) from None
