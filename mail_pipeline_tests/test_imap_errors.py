"""classify: what the socket, TLS and IMAP layers raise, as one secret-free ImapError that says
whether a retry can help."""

from __future__ import annotations

import socket

import pytest
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mail_pipeline.imap import errors
from mail_pipeline.imap.connection import ImapConfig

CONFIG = ImapConfig(host="imap.example.test", port=993, username="alice")


@pytest.mark.parametrize(
    ("raised", "kind", "transient"),
    [
        (
            LoginError("b'[AUTHENTICATIONFAILED] Authentication failed.'"),
            errors.ImapAuthError,
            False,
        ),
        # Dovecot while its auth process restarts; RFC 5530 says retry later
        (
            LoginError(
                "b'[UNAVAILABLE] Temporary authentication failure. [host:2026-11-30 08:00:00]'"
            ),
            errors.ImapUnavailable,
            True,
        ),
        (
            IMAPClientError("select failed: [UNAVAILABLE] Mailbox is locked, try again"),
            errors.ImapUnavailable,
            True,
        ),
        (IMAPClientError("status failed: Mailbox does not exist"), errors.ImapError, False),
        (IMAPClientAbortError("socket error: EOF"), errors.ImapConnectionLost, True),
        (ConnectionRefusedError(111, "Connection refused"), errors.ImapRefusedError, True),
        (TimeoutError("timed out"), errors.ImapTimeoutError, True),
        (socket.gaierror(-2, "Name or service not known"), errors.ImapDnsError, False),
    ],
)
def test_classify(raised, kind, transient):
    error = errors.classify(raised, CONFIG)
    assert type(error) is kind and error.transient is transient
    assert "imap.example.test" in str(error)
