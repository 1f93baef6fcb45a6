"""The search service's console: a client that goes away early is not an error of the service."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from mail_pipeline.service.reader import MailReader
from mail_pipeline.service.web import SearchServer
from mail_pipeline.settings import Settings


def test_a_client_gone_before_its_answer_prints_no_traceback(
    indexed_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handled = threading.Event()

    class Watched(SearchServer):
        def process_request_thread(
            self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
        ) -> None:
            super().process_request_thread(request, client_address)
            handled.set()

    server = Watched(("127.0.0.1", 0), MailReader(Settings(data_dir=indexed_demo)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        client = socket.create_connection((str(host), int(port)))
        client.sendall(b"GET /api/search?q=budget+review HTTP/1.1\r\nHost: x\r\n\r\n")
        # Close with a reset (linger 0) before the answer: its write then fails on the server.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        assert handled.wait(120)
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
