"""IMAP failures as operators read them: one class per cause, each saying whether a retry with
a fresh connection can help, and `classify`, which turns what the socket, TLS and IMAP layers
raise into one of them with a secret-free message."""

from __future__ import annotations

import imaplib
import socket
import ssl
from typing import TYPE_CHECKING

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

if TYPE_CHECKING:
    from mail_pipeline.imap.connection import ImapConfig


class ImapError(Exception):
    """An IMAP failure with a message fit for an operator (no secrets)."""

    kind = "error"
    transient = False


class ImapAuthError(ImapError):
    kind = "auth"


class ImapDnsError(ImapError):
    kind = "dns"


class ImapRefusedError(ImapError):
    kind = "refused"
    transient = True


class ImapTlsError(ImapError):
    kind = "tls"


class ImapTimeoutError(ImapError):
    kind = "timeout"
    transient = True


class ImapConnectionLost(ImapError):
    kind = "connection_lost"
    transient = True


class ImapUnavailable(ImapError):
    """The server answers but a part of it is down (RFC 5530 `[UNAVAILABLE]`), as while it restarts."""

    kind = "unavailable"
    transient = True


class ImapFolderError(ImapError):
    kind = "folder"


class ImapFolderMissing(ImapFolderError):
    """The server refused a folder and LIST does not show it: deleted or renamed."""

    kind = "missing"


class ImapProtocolError(ImapError):
    kind = "protocol"


def unavailable(error: BaseException) -> bool:
    """A NO with RFC 5530's UNAVAILABLE code: worth a retry, even to LOGIN."""
    return isinstance(error, IMAPClientError) and "[UNAVAILABLE]" in str(error).upper()


def classify(error: BaseException, config: ImapConfig) -> ImapError:
    """Turn a socket/TLS/IMAP exception into one clear, secret-free ImapError."""
    where = f"{config.host}:{config.port}"
    if isinstance(error, ImapError):
        return error
    if unavailable(error):
        return ImapUnavailable(f"{where} is temporarily unavailable: {error}")
    if isinstance(error, LoginError):
        return ImapAuthError(
            f"login failed for user {config.username!r} on {where}: bad credentials"
        )
    if isinstance(error, socket.gaierror):
        return ImapDnsError(f"cannot resolve host {config.host!r} (DNS lookup failed)")
    if isinstance(error, ConnectionRefusedError):
        return ImapRefusedError(
            f"connection refused by {where}: is the IMAP server running on that port?"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return ImapTlsError(
            f"TLS certificate of {where} could not be verified ({error.verify_message}); "
            "pass the server's CA with --ca-file if it is self-signed"
        )
    if isinstance(error, ssl.SSLError):
        return ImapTlsError(f"TLS handshake with {where} failed: {error.reason or error}")
    if isinstance(error, (socket.timeout, TimeoutError)):
        return ImapTimeoutError(f"timed out talking to {where}")
    if isinstance(
        error, (IMAPClientAbortError, imaplib.IMAP4.abort, ConnectionError, EOFError, OSError)
    ):
        return ImapConnectionLost(
            f"connection to {where} was lost: {type(error).__name__}: {error}"
        )
    if isinstance(error, IMAPClientError):
        return ImapError(f"IMAP error from {where}: {error}")
    return ImapError(f"unexpected error talking to {where}: {type(error).__name__}")
