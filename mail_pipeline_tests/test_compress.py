"""COMPRESS=DEFLATE (RFC 4978) against the real Dovecot and its imap_zlib plugin: the same
messages, fewer bytes on the wire; a server that advertises it and refuses it, or breaks its
stream after accepting it, is used uncompressed, and said so once."""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import threading
from collections.abc import Iterator

import pytest

from mail_pipeline.imap import wire
from mail_pipeline.imap.connection import ImapConfig
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.storage.accounts import Account
from mail_pipeline_tests.conftest import _server_root, _start
from mail_pipeline_tests.proxied_mailbox import FOLDERS, seed, server_digests
from mail_pipeline_tests.servers import Dovecot

pytestmark = pytest.mark.integration


class RawProxy:
    """Bytes from the server counted as they pass; once the server has accepted COMPRESS,
    optionally replaced by 0xff, which no deflate stream can start with (BTYPE 11 is reserved)."""

    def __init__(self, upstream_port: int, break_deflate: bool = False):
        self.upstream_port = upstream_port
        self.break_deflate = break_deflate
        self.from_server = 0
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            asked = threading.Event()
            threading.Thread(target=self._up, args=(client, server, asked), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, asked), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, asked: threading.Event) -> None:
        while data := _recv(client):
            if b" COMPRESS DEFLATE" in data.upper():
                asked.set()
            server.sendall(data)
        server.close()

    def _down(self, server: socket.socket, client: socket.socket, asked: threading.Event) -> None:
        accepted = False
        while data := _recv(server):
            self.from_server += len(data)
            if accepted and self.break_deflate:
                data = b"\xff" * len(data)
            accepted = accepted or (asked.is_set() and b" OK " in data)
            client.sendall(data)
        client.close()

    def close(self) -> None:
        self.listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def config(port: int, compress: bool = True) -> ImapConfig:
    return ImapConfig(
        host="127.0.0.1",
        port=port,
        username="alice",
        security="plain",
        compress=compress,
        retry_s=10,
        backoff_s=0.1,
    )


def digests(session: ImapSession) -> set[str]:
    found = set()
    for folder in FOLDERS:
        session.client.select_folder(folder, readonly=True)
        bodies = session.client.fetch(session.client.search(["ALL"]), [b"BODY.PEEK[]"])
        found |= {hashlib.sha256(item[b"BODY[]"]).hexdigest() for item in bodies.values()}
    return found


@pytest.fixture(autouse=True)
def forget_broken_servers() -> Iterator[None]:
    wire.BROKEN_DEFLATE.clear()
    yield
    wire.BROKEN_DEFLATE.clear()


@pytest.fixture
def plain_dovecot() -> Iterator[Dovecot]:
    """Dovecot without imap_zlib that still advertises COMPRESS=DEFLATE: it answers BAD."""
    root = _server_root("mp-dovecot-")
    server = _start(lambda: Dovecot(root, compress=False, imap_capability="+COMPRESS=DEFLATE"))
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_a_compressed_connection_fetches_the_same_messages_in_fewer_bytes(dovecot):
    seed(dovecot, count=40)
    sizes = {}
    for compress in (False, True):
        proxy = RawProxy(dovecot.port)
        with ImapSession(config(proxy.port, compress), "alice-secret-pw") as session:
            assert session.compressed is compress
            assert digests(session) == server_digests(dovecot)
        sizes[compress] = proxy.from_server
        proxy.close()
    assert sizes[True] < sizes[False] / 2, sizes


def test_a_server_that_advertises_compress_and_refuses_it_is_used_uncompressed(
    plain_dovecot, caplog
):
    seed(plain_dovecot)
    caplog.set_level(logging.WARNING, logger=wire.__name__)
    for _ in range(2):
        with ImapSession(config(plain_dovecot.port), "alice-secret-pw") as session:
            assert b"COMPRESS=DEFLATE" in session.capabilities
            assert not session.compressed
            assert digests(session) == server_digests(plain_dovecot)
    refused = [r for r in caplog.records if "refused it" in r.getMessage()]
    assert len(refused) == 1, caplog.text


def test_a_deflate_stream_broken_after_ok_reconnects_uncompressed(dovecot, caplog):
    seed(dovecot)
    caplog.set_level(logging.WARNING, logger=wire.__name__)
    proxy = RawProxy(dovecot.port, break_deflate=True)
    with ImapSession(config(proxy.port), "alice-secret-pw") as session:
        assert session.compressed  # the server accepted; its answers then arrive broken
        assert {f.name for f in session.list_folders()} >= set(FOLDERS)
        assert not session.compressed and proxy.connections == 2
        assert digests(session) == server_digests(dovecot)
    proxy.close()
    broken = [r for r in caplog.records if "broke its COMPRESS=DEFLATE" in r.getMessage()]
    assert len(broken) == 1, caplog.text


@pytest.mark.parametrize(
    ("compress", "host", "expected"),
    [
        ("auto", "imap.example.com", True),
        ("auto", "127.0.0.1", False),
        ("auto", "localhost", False),
        ("on", "127.0.0.1", True),
        ("off", "imap.example.com", False),
    ],
)
def test_accounts_compress_off_loopback_unless_told(compress, host, expected):
    account = Account("a", "a@example.com", host, 993, "a", "", compress=compress)
    assert account.compresses is expected
