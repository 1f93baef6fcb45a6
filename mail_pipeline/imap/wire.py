"""The imaplib connection under imapclient: the one module that reaches past their public APIs.

imapclient has no public accessor for its imaplib connection, and imaplib no public way to send a
command without waiting for its answer, nor to take the capabilities off the greeting. Both
carry measured speed: pipelined FETCH and STATUS (several commands in flight per connection,
bench/RESULTS.md fetch_wan) and one round trip less per connection. Every private name used is
listed in CLIENT_PRIVATE and CONNECTION_PRIVATE; test_private_names checks each is still there,
so a release that drops one fails that test by name instead of the sync at run time.

COMPRESS=DEFLATE (RFC 4978) sits here too: once the server accepts it, everything after is a raw
deflate stream both ways, so the connection's documented `send`, `read` and `readline` (which
imaplib and imapclient call for every byte) compress and inflate.

imaplib sends CAPABILITY right after the greeting, though a server's greeting may list them
already (the CAPABILITY response code, RFC 3501 7.1): a round trip per connection, before
anything else can be sent, which a server tens of milliseconds away makes felt.
"""

from __future__ import annotations

import imaplib
import io
import logging
import zlib
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient, imap4, imap_utf7, tls

if TYPE_CHECKING:
    from typing_extensions import Buffer

# What this module uses that imapclient and imaplib do not document, on a connected client and
# on its imaplib connection (some are set in their __init__, so only an instance has them).
CLIENT_PRIVATE = ("_imap", "_create_IMAP4", "_timeout")
CONNECTION_PRIVATE = ("_command", "_command_complete", "_get_capabilities", "_encoding")


log = logging.getLogger(__name__)

# Servers that advertised COMPRESS=DEFLATE and then broke its stream: not asked again by this
# process (each connection to them stays uncompressed), and said so once.
BROKEN_DEFLATE: set[tuple[str, int]] = set()
# zlib level 1: mail text deflates 3-5x at it, at a fraction of level 6's CPU (RFC 4978 leaves it
# to the client); commands are small, so this matters little either way.
DEFLATE_LEVEL = 1
INFLATE_STEP = 1 << 20  # inflated at most per call: a hostile stream cannot balloon memory
LINE_LIMIT = 1_000_000  # as imaplib's own readline limit


class _Deflated:
    """RFC 4978's raw deflate streams (no zlib header: wbits -15) over an imaplib connection."""

    def __init__(self, connection: imaplib.IMAP4, where: tuple[str, int]):
        self.connection = connection
        self.where = where
        self.deflate = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.buffer = bytearray()
        self.start = 0  # of what is not read yet: the buffer is compacted once, not per line

    def pack(self, data: bytes) -> bytes:
        return self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def more(self) -> bool:
        """Inflate more of the stream into the buffer; False at the end of the connection."""
        pending = self.inflate.unconsumed_tail
        if not pending:
            reader = self.connection.file
            if not isinstance(reader, io.BufferedReader):  # socket.makefile("rb") makes one
                raise TypeError(f"the connection reads from a {type(reader).__name__}")
            pending = reader.read1(65536)
            if pending is None:  # a non-blocking socket with nothing yet (imapclient's IDLE)
                raise BlockingIOError("no data")
            if not pending:
                return False
        try:
            self.buffer += self.inflate.decompress(pending, INFLATE_STEP)
        except zlib.error as error:
            if self.where not in BROKEN_DEFLATE:
                BROKEN_DEFLATE.add(self.where)
                log.warning(
                    "%s:%d broke its COMPRESS=DEFLATE stream (%s): reconnecting uncompressed",
                    *self.where,
                    error,
                )
            raise self.connection.abort(f"COMPRESS=DEFLATE stream broken: {error}") from None
        return True

    def read(self, size: int) -> bytes:
        while len(self.buffer) - self.start < size and self.more():
            pass
        return self.take(self.start + size)

    def readline(self) -> bytes:
        searched = self.start
        while (end := self.buffer.find(b"\n", searched)) < 0:
            if len(self.buffer) - self.start > LINE_LIMIT:
                raise self.connection.error(f"got more than {LINE_LIMIT} bytes")
            searched = len(self.buffer)
            if not self.more():
                end = len(self.buffer) - 1
                break
        return self.take(end + 1)

    def take(self, end: int) -> bytes:
        data = bytes(self.buffer[self.start : end])
        self.start = min(end, len(self.buffer))
        if self.start > len(self.buffer) // 2:  # most of it read: drop that part, in one move
            del self.buffer[: self.start]
            self.start = 0
        return data


class _Greeted(imaplib.IMAP4):
    _greeted = False
    _deflated: _Deflated | None = None

    # imaplib's documented I/O methods: everything it and imapclient send and read goes through
    # them, so once COMPRESS is on, the stream is deflated here and nowhere else.
    def send(self, data: Buffer) -> None:
        super().send(data if self._deflated is None else self._deflated.pack(bytes(data)))

    def read(self, size: int) -> bytes:
        return super().read(size) if self._deflated is None else self._deflated.read(size)

    def readline(self) -> bytes:
        return super().readline() if self._deflated is None else self._deflated.readline()

    def start_deflate(self) -> None:
        self._deflated = _Deflated(self, (self.host, self.port))

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


def compress(client: IMAPClient) -> bool:
    """Turn on COMPRESS=DEFLATE (RFC 4978) when the server advertises it and has not broken it
    before; whether the connection is now compressed. A refusal (NO, BAD) leaves it as it was
    (RFC 4978 3), and is said once per server."""
    imap = connection(client)
    where = (client.host, client.port)
    if b"COMPRESS=DEFLATE" not in client.capabilities() or where in BROKEN_DEFLATE:
        return False
    if not isinstance(imap, _Greeted):
        return False
    try:
        result, data = imap.xatom("COMPRESS", "DEFLATE")
    except imap.error as error:  # BAD
        result, data = "BAD", [str(error).encode()]
    if result != "OK":
        BROKEN_DEFLATE.add(where)
        log.warning(
            "%s:%d advertises COMPRESS=DEFLATE but refused it (%s %s): continuing uncompressed",
            *where,
            result,
            b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")[:200],
        )
        return False
    imap.start_deflate()
    return True


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
