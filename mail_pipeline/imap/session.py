"""An IMAP session for syncing: TLS with verification, timeouts, batched streaming FETCH, and
retries that reconnect on transient failures (never on bad credentials).

Secrets: the password (or an OAuth credential) is passed in, used to sign in and dropped from
every error message.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError

from mail_pipeline.imap.fetch_response import FetchParseError, FetchValue, parse_fetch
from mail_pipeline.imap.errors import ImapConnectionLost, ImapError, ImapFolderError, ImapProtocolError, classify

log = logging.getLogger(__name__)

FETCH_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE", b"FLAGS", b"RFC822.SIZE"]
META_ITEMS = [b"INTERNALDATE", b"RFC822.SIZE", b"FLAGS"]


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    username: str
    security: str = "tls"  # tls | starttls | plain
    ca_file: str | None = None
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 0.5


@dataclass(frozen=True)
class Folder:
    name: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    messages: int
    highestmodseq: int | None = None


@dataclass(frozen=True)
class MessageMeta:
    uid: int
    internaldate: datetime
    size: int
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    internaldate: datetime
    flags: tuple[str, ...]
    size: int
    raw: bytes


def quiet_wire_log(client: IMAPClient) -> None:
    """Turn imaplib's wire log off unless the `imapclient.imaplib` logger would keep it.

    imapclient sets imaplib's debug level to 5 to feed that logger, and imaplib then formats
    every line and every literal (the repr of each message, then of each whole FETCH batch)
    before the logger drops it: 45% of the client's CPU fetching bodies (bench, 20k messages)."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


class ImapSession:
    """One connection per account per run. Use as a context manager; logout happens in finally."""

    def __init__(self, config: ImapConfig, password: str, *, on_fetch: Callable[[int], None] | None = None):
        self.config = config
        self._password = password
        self._client: IMAPClient | None = None
        self._selected: str | None = None
        self._on_fetch = on_fetch
        self.capabilities: frozenset[bytes] = frozenset()
        self._enabled: tuple[str, ...] = ()

    def __enter__(self) -> ImapSession:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def connect(self) -> None:
        c = self.config
        try:
            client = IMAPClient(
                c.host, port=c.port, ssl=c.security == "tls",
                ssl_context=self._ssl_context() if c.security != "plain" else None,
                timeout=SocketTimeout(connect=c.connect_timeout_s, read=c.read_timeout_s),
            )
            quiet_wire_log(client)
            if c.security == "starttls":
                client.starttls(self._ssl_context())
            client.normalise_times = False
            if isinstance(self._password, str):
                client.login(c.username, self._password)
            else:  # an OAuth credential (mail_pipeline/auth/tokens.py): SASL with a fresh access token
                self._password.login(client, c.username)
        except Exception as error:
            raise classify(error, c) from None
        self._client = client
        self._selected = None
        self.capabilities = frozenset(client.capabilities())
        if self._enabled:  # a reconnect: ENABLE lasts one connection (RFC 5161)
            client.enable(*self._enabled)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # the connection may already be gone; nothing left to release
            try:
                client.shutdown()
            except Exception:
                pass

    def _retrying(self, operation: Callable[[], object]) -> object:
        """Run `operation`, reconnecting and re-selecting on transient failures."""
        attempt = 0
        while True:
            try:
                if self._client is None:
                    folder, self._selected = self._selected, None
                    self.connect()
                    if folder:
                        self.select(folder)
                return operation()
            except Exception as raw_error:
                error = classify(raw_error, self.config)
                if not error.transient or attempt >= self.config.retries:
                    raise error from None
                attempt += 1
                delay = self.config.backoff_s * 2 ** (attempt - 1)
                log.warning("%s; retry %d/%d in %.1fs", error, attempt, self.config.retries, delay)
                selected = self._selected
                self.close()
                self._selected = selected
                time.sleep(delay)

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ImapConnectionLost("not connected")
        return self._client

    def list_folders(self) -> list[Folder]:
        def run():
            return [
                Folder(name=name, flags=tuple(f.decode() if isinstance(f, bytes) else str(f) for f in flags))
                for flags, _delim, name in self.client.list_folders()
            ]
        return self._retrying(run)

    def status(self, folder: str) -> FolderStatus:
        items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"]
        if b"CONDSTORE" in self.capabilities:
            items.append(b"HIGHESTMODSEQ")

        def run():
            try:
                data = self.client.folder_status(folder, items)
            except IMAPClientError as error:
                if "NONEXISTENT" in str(error).upper() or "doesn't exist" in str(error):
                    raise ImapFolderError(f"folder {folder!r} does not exist on {self.config.host}") from None
                raise
            return FolderStatus(
                uidvalidity=int(data[b"UIDVALIDITY"]), uidnext=int(data[b"UIDNEXT"]),
                messages=int(data[b"MESSAGES"]), highestmodseq=data.get(b"HIGHESTMODSEQ"),
            )
        return self._retrying(run)

    def select(self, folder: str) -> FolderStatus:
        def run():
            try:
                data = self.client.select_folder(folder, readonly=True)
            except IMAPClientError as error:
                raise ImapFolderError(f"cannot select folder {folder!r}: {error}") from None
            self._selected = folder
            return FolderStatus(
                uidvalidity=int(data[b"UIDVALIDITY"]), uidnext=int(data.get(b"UIDNEXT", 0)),
                messages=int(data.get(b"EXISTS", 0)), highestmodseq=data.get(b"HIGHESTMODSEQ"),
            )
        return self._retrying(run)

    def unselect(self) -> None:
        """Leave the selected folder: STATUS of the selected folder may be stale (RFC 3501 6.3.10)."""
        if self._selected is None or self._client is None:
            return
        # Selected read-only (EXAMINE), so CLOSE expunges nothing where UNSELECT is missing.
        leave = self.client.unselect_folder if b"UNSELECT" in self.capabilities else self.client.close_folder
        try:
            self._retrying(leave)
        except ImapError as error:
            # Some servers (pymap) refuse CLOSE on a read-only mailbox; a STATUS that might be
            # stale then costs one extra tick, which is better than failing the account.
            log.debug("could not leave folder %r: %s", self._selected, error)
        self._selected = None

    def enable(self, capability: str) -> bool:
        """ENABLE an extension (RFC 5161) before SELECT; False when the server does not offer it."""
        if capability.encode() not in self.capabilities or b"ENABLE" not in self.capabilities:
            return False
        if capability not in self._enabled:
            self._retrying(lambda: self.client.enable(capability))
            self._enabled += (capability,)
        return True

    def search_between(self, since: date, before: date) -> list[int]:
        """UIDs with INTERNALDATE in [since, before) in the server's timezone (RFC 3501 6.4.4)."""
        return sorted(self._retrying(lambda: self.client.search([b"SINCE", since, b"BEFORE", before])))

    def search_from(self, first_uid: int) -> list[int]:
        # `UID n:*` always matches the highest UID, even when it is below n (RFC 3501 6.4.8).
        uids = self._retrying(lambda: self.client.search([b"UID", f"{first_uid}:*"]))
        return sorted(uid for uid in uids if uid >= first_uid)

    def fetch_meta(self, uids: Sequence[int], batch: int = 1000) -> list[MessageMeta]:
        found: list[MessageMeta] = []
        for start in range(0, len(uids), batch):
            chunk = list(uids[start:start + batch])
            data = self._retrying(lambda: self._uid_fetch(chunk, META_ITEMS))
            found += [message_meta(uid, data[uid]) for uid in chunk if uid in data]
        return sorted(found, key=lambda m: m.uid)

    def fetch_messages(self, metas: Sequence[MessageMeta], *, max_messages: int, max_bytes: int) -> Iterator[FetchedMessage]:
        """Stream full messages in batches capped by count and by bytes."""
        for batch in plan_batches(metas, max_messages=max_messages, max_bytes=max_bytes):
            uids = [m.uid for m in batch]
            data = self._retrying(lambda: self._uid_fetch(uids, FETCH_ITEMS))
            # No body (absent or NIL): expunged between SEARCH and FETCH; a re-run fetches it if it is back.
            messages = [fetched_message(uid, data[uid]) for uid in uids if data.get(uid, {}).get(b"BODY[]") is not None]
            if self._on_fetch:
                self._on_fetch(len(messages))
            yield from messages

    def uid_fetch(self, uid_set: str, items: Sequence[bytes], modifiers: str = "") -> tuple[dict[int, dict[bytes, FetchValue]], list[bytes]]:
        """UID FETCH of a sequence set with RFC 7162 modifiers (imapclient's `fetch` cannot send
        them with `1:*`); returns the items by UID and the data of any VANISHED responses."""
        def run():
            self.client._imap.untagged_responses.pop("VANISHED", None)
            data = self._uid_fetch(uid_set, items, modifiers)
            return data, list(self.client._imap.untagged_responses.pop("VANISHED", None) or [])
        return self._retrying(run)

    def _uid_fetch(self, uids: Sequence[int] | str, items: Sequence[bytes], modifiers: str = "") -> dict[int, dict[bytes, FetchValue]]:
        """UID FETCH on imapclient's imaplib connection, parsed by `parse_fetch` (a third of
        imapclient's parsing time); imapclient stays for every other command."""
        uid_set = uids if isinstance(uids, str) else ",".join(map(str, uids))
        typ, data = self.client._imap.uid("FETCH", uid_set, b"(" + b" ".join(items) + b")", *([modifiers] if modifiers else []))
        if typ != "OK":
            raise IMAPClientError(f"FETCH failed: {data[0].decode(errors='replace')}")
        try:
            return parse_fetch(data)
        except FetchParseError as error:
            raise ImapProtocolError(f"unreadable FETCH response from {self.config.host}:{self.config.port}: {error}") from None


def _internaldate(uid: int, item: dict[bytes, FetchValue]) -> datetime:
    """A message without INTERNALDATE is an error: it must never be dropped or put on a wrong day."""
    value = item.get(b"INTERNALDATE")
    if not isinstance(value, datetime):
        raise ImapProtocolError(f"FETCH response for UID {uid} has no INTERNALDATE")
    return value


def message_meta(uid: int, item: dict[bytes, FetchValue]) -> MessageMeta:
    size = item.get(b"RFC822.SIZE")
    if not isinstance(size, int):
        raise ImapProtocolError(f"FETCH response for UID {uid} has no RFC822.SIZE")
    return MessageMeta(uid=uid, internaldate=_internaldate(uid, item), size=size, flags=flag_names(item))


def flag_names(item: dict[bytes, FetchValue]) -> tuple[str, ...]:
    return tuple(flag.decode(errors="replace") for flag in item.get(b"FLAGS") or ())


def fetched_message(uid: int, item: dict[bytes, FetchValue]) -> FetchedMessage:
    raw = item[b"BODY[]"]
    size = item.get(b"RFC822.SIZE")
    return FetchedMessage(
        uid=uid, internaldate=_internaldate(uid, item),
        flags=flag_names(item),
        size=size if isinstance(size, int) else len(raw), raw=raw,
    )


def plan_batches(metas: Iterable[MessageMeta], *, max_messages: int, max_bytes: int) -> Iterator[list[MessageMeta]]:
    batch: list[MessageMeta] = []
    size = 0
    for meta in metas:
        if batch and (len(batch) >= max_messages or size + meta.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(meta)
        size += meta.size
    if batch:
        yield batch


def config_for(account, settings) -> ImapConfig:
    """The connection settings of a registry `Account` under the given `Settings`."""
    return ImapConfig(
        host=account.host, port=account.port, username=account.username, security=account.security,
        ca_file=account.ca_file, connect_timeout_s=settings.imap_connect_timeout_s,
        read_timeout_s=settings.imap_read_timeout_s, retries=settings.imap_retries,
    )
