"""An IMAP connection: TLS with verification, timeouts, sign-in with a password or an OAuth
credential, COMPRESS=DEFLATE where asked for and offered, and the extensions ENABLEd on it, which
a reconnect enables again; operations retried across reconnects with backoff. `ImapSession`
(session.py) adds the folder and message commands.

Secrets: the password (or an OAuth credential) is passed in, used to sign in and dropped from
every error message.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from imapclient import IMAPClient, SocketTimeout

from mail_pipeline.imap import wire
from mail_pipeline.imap.errors import ImapConnectionLost, classify
from mail_pipeline.imap.wire import GreetedClient, quiet_wire_log

log = logging.getLogger(__name__)
T = TypeVar("T")


class Credential(Protocol):
    """An OAuth credential (mail_pipeline/auth/tokens.py): signs `client` in with SASL."""

    def login(self, client: IMAPClient, username: str) -> None: ...


class AccountAddress(Protocol):
    """Where an account's server is (a registry `Account`)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def security(self) -> str: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def compresses(self) -> bool: ...


class ImapTimings(Protocol):
    """The connection settings `config_for` reads (`Settings`)."""

    @property
    def imap_connect_timeout_s(self) -> float: ...
    @property
    def imap_read_timeout_s(self) -> float: ...
    @property
    def imap_retry_s(self) -> float: ...
    @property
    def imap_pipeline_depth(self) -> int: ...


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    username: str
    security: str = "tls"  # tls | starttls | plain
    ca_file: str | None = None
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 60.0
    retry_s: float = 60.0  # total time transient failures are retried before the run fails
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    pipeline_depth: int = 2  # FETCH commands sent before the oldest answer is read
    compress: bool = False  # COMPRESS=DEFLATE (RFC 4978) where the server offers it


@functools.lru_cache(maxsize=16)
def tls_context(ca_file: str | None, ca_mtime_ns: int | None) -> ssl.SSLContext:
    """One TLS context per CA file (None: the system's store), shared by every connection: loading
    the system store costs 145-195 ms on 2 busy cores, per connection before, so per account per
    sensor tick. `ca_mtime_ns` is in the key so a replaced CA file is read again; an updated
    system store is read by the next process."""
    del ca_mtime_ns  # only the cache key
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ImapConnection:
    """One signed-in connection at a time, re-opened by `connect` after `_drop`."""

    def __init__(self, config: ImapConfig, password: str | Credential):
        self.config = config
        self._password = password
        self._client: IMAPClient | None = None
        self._open: str | None = None  # the folder selected on the current connection
        self.capabilities: frozenset[bytes] = frozenset()
        self.compressed = False  # whether this connection runs COMPRESS=DEFLATE
        self._enabled: tuple[str, ...] = ()

    def _ssl_context(self) -> ssl.SSLContext:
        ca_file = self.config.ca_file
        return tls_context(ca_file, os.stat(ca_file).st_mtime_ns if ca_file else None)

    def connect(self) -> None:
        c = self.config
        try:
            client = GreetedClient(
                c.host,
                port=c.port,
                ssl=c.security == "tls",
                ssl_context=self._ssl_context() if c.security != "plain" else None,
                timeout=SocketTimeout(connect=c.connect_timeout_s, read=c.read_timeout_s),
            )
            quiet_wire_log(client)
            # Pipelined commands are small writes sent before the last answer: with Nagle's
            # algorithm each would wait for the server's ACK, a round trip, and pipelining is lost.
            client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if c.security == "starttls":
                client.starttls(self._ssl_context())
            client.normalise_times = False
            if isinstance(self._password, str):
                client.login(c.username, self._password)
            else:  # an OAuth credential (mail_pipeline/auth/tokens.py): SASL with a fresh access token
                self._password.login(client, c.username)
            # Right after sign-in, before any other command (RFC 4978 3).
            compressed = c.compress and wire.compress(client)
        except Exception as error:
            raise classify(error, c) from None
        self._client = client
        self._open = None
        self.capabilities = frozenset(client.capabilities())
        self.compressed = compressed
        if self._enabled:  # a reconnect: ENABLE lasts one connection (RFC 5161)
            client.enable(*self._enabled)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # the connection may already be gone; nothing left to release
            with contextlib.suppress(Exception):
                client.shutdown()

    def _drop(self) -> None:
        """Forget a broken connection (no LOGOUT: on a hung server it would wait out the read
        timeout again); the caller's folder is kept for the next one."""
        client, self._client, self._open = self._client, None, None
        try:
            if client is not None:
                client.shutdown()
        except Exception:  # already closed by the peer
            pass

    def _reopen(self) -> None:
        """Make the connection usable again after `_drop` (a session re-selects its folder too)."""
        if self._client is None:
            self.connect()

    def _retrying(self, operation: Callable[[], T]) -> T:
        """Run `operation` on a live session, reconnecting and re-selecting the caller's folder
        after transient failures, with backoff, until `retry_s` has passed (a server restart)."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                self._reopen()
                return operation()
            except Exception as raw_error:
                error = classify(raw_error, self.config)
                attempt += 1
                delay = min(self.config.backoff_s * 2 ** (attempt - 1), self.config.max_backoff_s)
                elapsed = time.monotonic() - started
                if not error.transient:
                    raise error from None
                if elapsed + delay > self.config.retry_s:
                    raise type(error)(
                        f"{error} (gave up after {attempt} attempt(s) in {elapsed:.0f}s)"
                    ) from None
                log.warning(
                    "%s; reconnecting in %.1fs (attempt %d, for up to %.0fs)",
                    error,
                    delay,
                    attempt,
                    self.config.retry_s,
                )
                self._drop()
                time.sleep(delay)

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ImapConnectionLost("not connected")
        return self._client


def config_for(account: AccountAddress, settings: ImapTimings) -> ImapConfig:
    """The connection settings of a registry `Account` under the given `Settings`."""
    return ImapConfig(
        host=account.host,
        port=account.port,
        username=account.username,
        security=account.security,
        ca_file=account.ca_file,
        connect_timeout_s=settings.imap_connect_timeout_s,
        read_timeout_s=settings.imap_read_timeout_s,
        retry_s=settings.imap_retry_s,
        pipeline_depth=settings.imap_pipeline_depth,
        compress=account.compresses,
    )
