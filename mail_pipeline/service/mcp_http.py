"""MCP's Streamable HTTP transport at `/mcp` of the search service, through the SDK's own app.

The service is the standard library's threading server and the SDK's transport is an ASGI app.
Rather than move every route of the page and the API onto an ASGI server, each `/mcp` request is
handed to the SDK's app on one event-loop thread. The app runs stateless with JSON responses: a
call is one POST answered by one JSON body, so no stream is held open (the tools are read-only
request and answer; the server never calls the client), and the answer is sent whole.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import MutableMapping
from typing import Any

from mail_pipeline.access.audit import AuditLog
from mail_pipeline.access.gate import Caller
from mail_pipeline.service.mcp_server import CALLER_KEY, build_server
from mail_pipeline.service.reader import MailReader

PATH = "/mcp"
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 300.0  # a first search_mail loads the model
# (status, headers, body) of the app's answer.
Answer = tuple[int, list[tuple[str, str]], bytes]


class McpEndpoint:
    def __init__(self, reader: MailReader, audit: AuditLog, address: tuple[str, int]):
        server = build_server(reader, audit)
        # The SDK turns on its DNS-rebinding checks (Host and Origin) for a loopback host.
        self._app = server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True, json_response=True, host=address[0]
        )
        self._manager = server.session_manager
        self._address = address
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="mcp-http", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the MCP endpoint did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        async with self._manager.run():
            self._ready.set()
            await self._stopping.wait()

    def close(self) -> None:
        if self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=10)

    def handle(
        self,
        method: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        client: str,
        caller: Caller,
    ) -> Answer:
        """The app's answer to one request, made by `caller` (authenticated by the web server)."""
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "client": (client, 0),
            "server": self._address,
            CALLER_KEY: caller,
        }
        future = asyncio.run_coroutine_threadsafe(self._call(scope, body), self._loop)
        return future.result(timeout=CALL_TIMEOUT_S)

    async def _call(self, scope: dict[str, Any], body: bytes) -> Answer:
        answered = asyncio.Event()
        received = False
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> MutableMapping[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # the client stays until its answer is sent whole
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    answered.set()

        await self._app(scope, receive, send)
        answered.set()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        return int(start.get("status", 500)), headers, b"".join(chunks)
