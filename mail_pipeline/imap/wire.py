"""The imaplib connection under imapclient: the one module that reaches past their public APIs.

imapclient has no public accessor for its imaplib connection, and imaplib no public way to send a
command without waiting for its answer, nor to take the capabilities off the greeting. Both
carry measured speed: pipelined FETCH and STATUS (several commands in flight per connection,
bench/RESULTS.md fetch_wan) and one round trip less per connection. Every private name used is
listed in CLIENT_PRIVATE and CONNECTION_PRIVATE; test_private_names checks each is still there,
so a release that drops one fails that test by name instead of the sync at run time.

imaplib sends CAPABILITY right after the greeting, though a server's greeting may list them
already (the CAPABILITY response code, RFC 3501 7.1): a round trip per connection, before
anything else can be sent, which a server tens of milliseconds away makes felt.
"""

from __future__ import annotations

import imaplib
import logging
from typing import Any

from imapclient import IMAPClient, imap4, imap_utf7, tls

# What this module uses that imapclient and imaplib do not document, on a connected client and
# on its imaplib connection (some are set in their __init__, so only an instance has them).
CLIENT_PRIVATE = ("_imap", "_create_IMAP4", "_timeout")
CONNECTION_PRIVATE = ("_command", "_command_complete", "_get_capabilities", "_encoding")


class _Greeted(imaplib.IMAP4):
    _greeted = False

    def _get_capabilities(self) -> None:
        # Only the greeting's: after STARTTLS they are asked for again (RFC 2595 3.1). Popped,
        # as imaplib's own CAPABILITY would, so the list LOGIN sends later is the one kept.
        listed = None if self._greeted else self.untagged_responses.pop("CAPABILITY", None)
        self._greeted = True
        if listed and isinstance(listed[-1], bytes):
            self.capabilities = tuple(str(listed[-1], self._encoding).upper().split())
        else:
            super()._get_capabilities()  # type: ignore[misc]  # imaplib's private method, not in typeshed


class _GreetedTLS(_Greeted, tls.IMAP4_TLS):
    pass


class _GreetedPlain(_Greeted, imap4.IMAP4WithTimeout):
    pass


class GreetedClient(IMAPClient):
    """IMAPClient (TLS or plain) whose connection reads the capabilities off the greeting."""

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            # imapclient's IMAP4_TLS takes an ssl_context imaplib.IMAP4 (_Greeted's typed base) lacks
            return _GreetedTLS(self.host, self.port, self.ssl_context, timeout)  # type: ignore[call-arg]
        return _GreetedPlain(self.host, self.port, timeout)


def connection(client: IMAPClient) -> imaplib.IMAP4:
    imap: imaplib.IMAP4 = client._imap
    return imap


def quiet_wire_log(client: IMAPClient) -> None:
    """Turn imaplib's wire log off unless the `imapclient.imaplib` logger would keep it.

    imapclient sets imaplib's debug level to 5 to feed that logger, and imaplib then formats
    every line and every literal (the repr of each message, then of each whole FETCH batch)
    before the logger drops it: 45% of the client's CPU fetching bodies (bench, 20k messages)."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        connection(client).debug = 0


def send(client: IMAPClient, name: str, *args: str | bytes) -> bytes:
    """Send a command without waiting for its answer (RFC 3501 5.5); its tag, for `complete`."""
    tag: bytes = connection(client)._command(name, *args)
    return tag


def complete(client: IMAPClient, name: str, tag: bytes) -> tuple[str, list[Any]]:
    """Read up to `tag`'s completion: its result ("OK", "NO", "BAD") and text. The untagged
    responses read meanwhile are kept for `take`; a BYE raises imapclient's abort error."""
    result: tuple[str, list[Any]] = connection(client)._command_complete(name, tag)
    return result


def take(client: IMAPClient, code: str) -> list[Any]:
    """The untagged responses named `code` read so far, removed (imaplib's documented `response`)."""
    return [data for data in connection(client).response(code)[1] if data is not None]


def mailbox(client: IMAPClient, folder: str) -> bytes:
    """`folder` as a quoted mailbox argument, modified UTF-7 (RFC 3501 5.1.3) as imapclient sends it."""
    name = imap_utf7.encode(folder) if client.folder_encode else folder.encode()
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
