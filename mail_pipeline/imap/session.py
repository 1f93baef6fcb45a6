"""An IMAP session for syncing, on a connection (connection.py): folders, SEARCH, batched and
pipelined streaming FETCH, and retries that reconnect and re-select on transient failures for up
to `ImapConfig.retry_s` (never on bad credentials).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from imapclient.response_parser import parse_response

from mail_pipeline.imap import wire
from mail_pipeline.imap.connection import Credential, ImapConfig, ImapConnection
from mail_pipeline.imap.errors import (
    ImapError,
    ImapFolderError,
    ImapFolderMissing,
    ImapProtocolError,
    classify,
    unavailable,
)
from mail_pipeline.imap.fetch_response import FetchParseError, FetchValue, parse_fetch
from mail_pipeline.imap.pipelining import FetchWindow
from mail_pipeline.imap.records import (
    FetchedMessage,
    Folder,
    FolderStatus,
    MessageMeta,
    fetched_message,
    message_meta,
    plan_batches,
    sequence_set,
)

log = logging.getLogger(__name__)

META_ITEMS = [b"INTERNALDATE", b"RFC822.SIZE", b"FLAGS"]
# Metadata answers are ~100 bytes a message: this many 1000-UID chunks in flight cover the
# bandwidth-delay product of a distant link (500 KB at 40 ms and 100 Mbit/s), so planning a
# large folder costs one round trip, not one per chunk or two.
META_DEPTH = 8
# A SEARCH answer is one line of UIDs, up to 11 bytes each, and imaplib (under IMAPClient) reads
# no line longer than 1,000,000 bytes: a folder of about 100,000 messages in the window failed
# planning with "SEARCH => got more than 1000000 bytes" (the scale bench at 200,000 messages). A
# folder holding more messages than this is searched this many messages at a time, each answer
# at most 550,000 bytes, whatever the server's UIDs and however the dates fall (a mailbox
# imported in one day has every INTERNALDATE on that day).
SEARCH_SLICE = 50_000


class ImapSession(ImapConnection):
    """One connection per account per run. Use as a context manager; logout happens in finally."""

    def __init__(
        self,
        config: ImapConfig,
        password: str | Credential,
        *,
        on_fetch: Callable[[int], None] | None = None,
    ):
        super().__init__(config, password)
        self._folder: str | None = (
            None  # selected by the caller: re-selected on every new connection
        )
        self._examined: FolderStatus | None = None
        self._modseq = False  # `select` wants HIGHESTMODSEQ from STATUS where EXAMINE lacks it
        self._on_fetch = on_fetch

    def __enter__(self) -> ImapSession:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reopen(self) -> None:
        super()._reopen()
        if self._folder is not None and self._open != self._folder:
            examined = self._examine(self._folder)
            if self._examined is not None and examined.uidvalidity != self._examined.uidvalidity:
                folder, self._folder = self._folder, None
                # The UIDs the caller holds (a plan, a SEARCH) name other messages now.
                raise ImapError(
                    f"UIDVALIDITY of {folder!r} changed while reconnecting to {self.config.host}; "
                    "its UIDs are void: re-run to fetch it afresh"
                )
            self._examined = examined

    def list_folders(self) -> list[Folder]:
        def run() -> list[Folder]:
            return [
                Folder(
                    name=name,
                    flags=tuple(f.decode() if isinstance(f, bytes) else str(f) for f in flags),
                    delimiter=delimiter.decode() if isinstance(delimiter, bytes) else delimiter,
                )
                for flags, delimiter, name in self.client.list_folders()
            ]

        return self._retrying(run)

    def status(self, folder: str) -> FolderStatus:
        items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"]
        if b"CONDSTORE" in self.capabilities:
            items.append(b"HIGHESTMODSEQ")

        def run() -> FolderStatus:
            try:
                data = self.client.folder_status(folder, items)
            except IMAPClientError as error:
                if isinstance(error, IMAPClientAbortError) or unavailable(error):
                    raise
                raise self._folder_error(folder, "STATUS", error) from None
            return FolderStatus(
                uidvalidity=int(data[b"UIDVALIDITY"]),
                uidnext=int(data[b"UIDNEXT"]),
                messages=int(data[b"MESSAGES"]),
                highestmodseq=data.get(b"HIGHESTMODSEQ"),
            )

        return self._retrying(run)

    def _folder_error(self, folder: str, command: str, error: IMAPClientError) -> ImapFolderError:
        """What a refused STATUS/EXAMINE means, decided by LIST, never by the server's wording
        (Dovecot says `[NONEXISTENT]`, others `NO Mailbox does not exist, or must be subscribed to.`)."""
        where = f"{self.config.host}:{self.config.port}"
        if self._listed(folder):
            return ImapFolderError(f"{command} of folder {folder!r} refused by {where}: {error}")
        return ImapFolderMissing(
            f"folder {folder!r} does not exist on {where} (not listed; the server said: {error})"
        )

    def _listed(self, folder: str) -> bool:
        # LIST has no escape for its wildcards (RFC 3501 6.3.8): filter the names it returns.
        listed = [
            flags
            for flags, _delimiter, name in self.client.list_folders("", folder)
            if name == folder
        ]
        return bool(listed) and not {b"\\NONEXISTENT", b"\\NOSELECT"} & {
            f.upper() for f in listed[0]
        }

    def exists(self, folder: str) -> bool:
        """Whether a LIST of `folder` shows it as a selectable mailbox: the confirmation asked
        before a folder missing from an earlier LIST is concluded gone (never a server's wording)."""
        return bool(self._retrying(lambda: self._listed(folder)))

    def select(self, folder: str, *, modseq: bool = False) -> FolderStatus:
        """EXAMINE `folder`; it stays selected across reconnects until another select or unselect.
        `modseq`, on a CONDSTORE server: HIGHESTMODSEQ where EXAMINE's answer lacks it (CONDSTORE
        not enabled), from a STATUS sent just before it in the same round trip, so no newer than
        the flags read after it; None where STATUS is refused."""
        self._folder, self._open, self._examined = folder, None, None
        self._modseq = modseq and b"CONDSTORE" in self.capabilities
        return self._retrying(self._selected)

    def _selected(self) -> FolderStatus:
        # _retrying's _reopen has examined the folder, or raised
        if self._examined is None:
            raise ImapError(f"folder {self._folder!r} is not selected after EXAMINE")
        return self._examined

    def _examine(self, folder: str) -> FolderStatus:
        asked = (
            wire.send(
                self.client,
                "STATUS",
                wire.mailbox(self.client, folder),
                "(UIDVALIDITY HIGHESTMODSEQ)",
            )
            if self._modseq
            else None
        )
        try:
            data = self.client.select_folder(folder, readonly=True)
        except IMAPClientError as error:
            if isinstance(error, IMAPClientAbortError) or unavailable(error):
                raise
            failure = self._folder_error(folder, "EXAMINE", error)
            self._folder = None
            raise failure from None
        self._open = folder
        examined = FolderStatus(
            uidvalidity=int(data[b"UIDVALIDITY"]),
            uidnext=int(data.get(b"UIDNEXT") or self._uidnext(folder)),
            messages=int(data.get(b"EXISTS", 0)),
            highestmodseq=data.get(b"HIGHESTMODSEQ"),
        )
        if asked is None or examined.highestmodseq is not None:
            return examined
        return replace(
            examined,
            highestmodseq=self._status_modseq(folder, asked, data.get(b"STATUS"), examined),
        )

    def _status_modseq(
        self, folder: str, tag: bytes, answer: list[Any] | None, examined: FolderStatus
    ) -> int | None:
        """HIGHESTMODSEQ of the STATUS sent with `tag` (its answer read with EXAMINE's), if it
        describes the folder EXAMINE opened."""
        try:
            typ, said = wire.complete(self.client, "STATUS", tag)
        except IMAPClientError as error:
            if isinstance(error, IMAPClientAbortError):
                raise
            typ, said = "BAD", [str(error).encode()]
        if typ != "OK" or not answer:
            text = b" ".join(part for part in said if isinstance(part, bytes)).decode(
                errors="replace"
            )
            log.info(
                "STATUS of %r refused by %s:%s (%s): flags of stored messages are all asked for",
                folder,
                self.config.host,
                self.config.port,
                text,
            )
            return None
        items = parse_response(answer[-1:])[-1]
        found = dict(zip(items[::2], items[1::2]))
        return (
            found.get(b"HIGHESTMODSEQ")
            if found.get(b"UIDVALIDITY") == examined.uidvalidity
            else None
        )

    def _uidnext(self, folder: str) -> int:
        """UIDNEXT where EXAMINE's answer lacks it (required by RFC 3501 6.3.1, yet some servers
        omit it): from STATUS, or where that is refused too, the highest UID plus one."""
        try:
            return int(self.client.folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"])
        except IMAPClientError as error:
            if isinstance(error, IMAPClientAbortError):
                raise
            # `UID SEARCH UID *` answers the highest UID (RFC 3501 6.4.8); 1 in an empty folder.
            return max(self.client.search([b"UID", b"*"]), default=0) + 1

    def unselect(self) -> None:
        """Leave the selected folder: STATUS of the selected folder may be stale (RFC 3501 6.3.10)."""
        self._folder = None
        if self._open is None or self._client is None:
            return
        # Selected read-only (EXAMINE), so CLOSE expunges nothing where UNSELECT is missing.
        leave = (
            self.client.unselect_folder
            if b"UNSELECT" in self.capabilities
            else self.client.close_folder
        )
        try:
            leave()
        except Exception as raw_error:
            error = classify(raw_error, self.config)
            # Some servers (pymap) refuse CLOSE on a read-only mailbox; a STATUS that might be
            # stale then costs one extra tick, which is better than failing the account.
            log.debug("could not leave folder %r: %s", self._open, error)
            if error.transient:
                self._drop()  # the next command reconnects, with nothing selected
        self._open = None

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
        return self._search([b"SINCE", since, b"BEFORE", before])

    def search_from(self, first_uid: int) -> list[int]:
        # `UID n:*` always matches the highest UID, even when it is below n (RFC 3501 6.4.8).
        uids = self._search([b"UID", f"{first_uid}:*"])
        return [uid for uid in uids if uid >= first_uid]

    def _search(self, criteria: list[Any]) -> list[int]:
        """`UID SEARCH criteria` in the selected folder, sorted; a slice of SEARCH_SLICE messages
        at a time where the folder held more at EXAMINE (or its last reconnect)."""

        def run() -> set[int]:
            held = self._examined.messages if self._examined else 0
            if held <= SEARCH_SLICE:
                return set(self.client.search(criteria))
            # A bare sequence set in UID SEARCH names messages by sequence number and is answered
            # in UIDs (RFC 3501 6.4.4, 6.4.8): the UIDs that start each slice after the first.
            marks = ",".join(str(n) for n in range(SEARCH_SLICE + 1, held + 1, SEARCH_SLICE))
            starts = [1, *sorted(self.client.search([marks.encode()]))]
            found: set[int] = set()
            for first, after in zip(starts, [*starts[1:], None]):
                # UIDs, not sequence numbers: messages expunged meanwhile move no slice's edge.
                span = f"{first}:{after - 1}" if after else f"{first}:*"
                found.update(self.client.search([b"UID", span.encode(), *criteria]))
            return found

        return sorted(self._retrying(run))

    def fetch_meta(self, uids: Sequence[int], batch: int = 1000) -> list[MessageMeta]:
        found: list[MessageMeta] = []
        chunks = iter([list(uids[start : start + batch]) for start in range(0, len(uids), batch)])
        window = FetchWindow(
            self,
            lambda: next(chunks, None),
            max(self.config.pipeline_depth, META_DEPTH),
            META_ITEMS,
            list,
        )
        for chunk, data in window:
            found += [message_meta(uid, data[uid]) for uid in chunk if uid in data]
            self._warn_missing([uid for uid in chunk if uid not in data], len(chunk))
        return sorted(found, key=lambda m: m.uid)

    def fetch_messages(
        self, metas: Sequence[MessageMeta], *, max_messages: int, max_bytes: int, depth: int = 1
    ) -> Iterator[FetchedMessage]:
        """Stream full messages in batches capped by count and by bytes, `depth` commands in flight."""
        batches = plan_batches(metas, max_messages=max_messages, max_bytes=max_bytes)
        for batch, data in FetchWindow(self, lambda: next(batches, None), depth):
            yield from self.received(batch, data)

    def received(
        self, batch: Sequence[MessageMeta], data: dict[int, dict[bytes, FetchValue]]
    ) -> list[FetchedMessage]:
        """The messages of a batch's answer that came with a body."""
        # No body (absent or NIL): expunged since SEARCH, or a server's hiccup. Not stored, so the
        # next run's plan asks for it again; the caller records it (sync.plan.raw_rows).
        messages = [
            fetched_message(m, data[m.uid])
            for m in batch
            if data.get(m.uid, {}).get(b"BODY[]") is not None
        ]
        self._warn_missing(
            [m.uid for m in batch if data.get(m.uid, {}).get(b"BODY[]") is None], len(batch)
        )
        if self._on_fetch:
            self._on_fetch(len(messages))
        return messages

    def uid_fetch(
        self,
        uid_set: str,
        items: Sequence[bytes],
        modifiers: str = "",
        requested: Collection[int] | None = None,
    ) -> tuple[dict[int, dict[bytes, FetchValue]], list[bytes]]:
        """UID FETCH of a sequence set with RFC 7162 modifiers (imapclient's `fetch` cannot send
        them with `1:*`); returns the items by UID and the data of any VANISHED responses."""

        def run() -> tuple[dict[int, dict[bytes, FetchValue]], list[bytes]]:
            wire.take(self.client, "VANISHED")
            data = self._uid_fetch(uid_set, items, modifiers, requested)
            return data, wire.take(self.client, "VANISHED")

        return self._retrying(run)

    def _warn_missing(self, missing: list[int], asked: int) -> None:
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            log.warning(
                "%s:%s returned nothing for %d of %d requested UID(s) in %r: %s (not stored; asked again "
                "next run)",
                self.config.host,
                self.config.port,
                len(missing),
                asked,
                self._open,
                shown,
            )

    def _uid_fetch(
        self,
        uids: Sequence[int] | str,
        items: Sequence[bytes],
        modifiers: str = "",
        requested: Collection[int] | None = None,
    ) -> dict[int, dict[bytes, FetchValue]]:
        """UID FETCH on imapclient's imaplib connection (imap/wire.py), parsed by `parse_fetch` (a third of
        imapclient's parsing time); imapclient stays for every other command. `uids` is a list,
        or a sequence set (then `requested`, when known, filters unsolicited responses)."""
        requested = requested if isinstance(uids, str) else set(uids)
        return self.finish_fetch(self.send_fetch(uids, items, modifiers), requested)

    def send_fetch(
        self, uids: Sequence[int] | str, items: Sequence[bytes], modifiers: str = ""
    ) -> bytes:
        """Send a UID FETCH without waiting for its answer; its tag, for `finish_fetch`."""
        uid_set = uids if isinstance(uids, str) else sequence_set(uids)
        listed = b"(" + b" ".join(items) + b")"
        return wire.send(
            self.client, "UID", "FETCH", uid_set, listed, *([modifiers] if modifiers else [])
        )

    def finish_fetch(
        self, tag: bytes, requested: Collection[int] | None
    ) -> dict[int, dict[bytes, FetchValue]]:
        """Read up to `tag`'s completion; the FETCH responses read so far, by UID."""
        typ, said = wire.complete(self.client, "UID", tag)
        if typ != "OK":
            text = b" ".join(part for part in said if isinstance(part, bytes)).decode(
                errors="replace"
            )
            if typ != "NO" or "[UNAVAILABLE]" in text.upper():
                raise IMAPClientError(f"FETCH failed: {text}")
            # Gmail ("Some messages could not be FETCHed") and Dovecot ([EXPUNGEISSUED]) send the
            # messages they can and answer NO: keep those; the callers count the others missing.
            log.warning(
                "%s:%s answered FETCH with NO: %s", self.config.host, self.config.port, text
            )
        try:
            return parse_fetch(wire.take(self.client, "FETCH"), requested=requested)
        except FetchParseError as error:
            raise ImapProtocolError(
                f"unreadable FETCH response from {self.config.host}:{self.config.port}: {error}"
            ) from None
