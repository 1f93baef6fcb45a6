"""An imapclient connection that takes the capabilities its greeting lists instead of asking.

imaplib sends CAPABILITY right after the greeting, though a server's greeting may list them
already (the CAPABILITY response code, RFC 3501 7.1): a round trip per connection, before
anything else can be sent, which a server tens of milliseconds away makes felt.
"""

from __future__ import annotations

import imaplib

from imapclient import IMAPClient, imap4, tls


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
            super()._get_capabilities()


class _GreetedTLS(_Greeted, tls.IMAP4_TLS):
    pass


class _GreetedPlain(_Greeted, imap4.IMAP4WithTimeout):
    pass


class GreetedClient(IMAPClient):
    """IMAPClient (TLS or plain) whose connection reads the capabilities off the greeting."""

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _GreetedTLS(self.host, self.port, self.ssl_context, timeout)
        return _GreetedPlain(self.host, self.port, timeout)
