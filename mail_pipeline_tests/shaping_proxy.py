"""A loopback TCP proxy that plays a wide-area link: a fixed one-way delay and a rate limit per
direction, shared by every connection through it (the user's one link to the server).

It forwards bytes untouched (TLS passes through). Each chunk read is given the moment it would
leave a link of `rate` bytes/s (after the bytes queued before it, of any connection) plus the
delay, and is written then: throughput is the rate's, however long the delay. Bytes held per
connection and direction are capped, so a fast sender is slowed by TCP as on a real link.
Plain IMAP through it can be watched: how many `UID FETCH` commands a connection had in flight
at once, how many connections fetched, and which items they asked for. `python -m mail_pipeline_tests.shaping_proxy` runs
it as its own process (the bench does, so it never shares a CPU lock with the client).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
import threading

CHUNK = 16384


class Link:
    """One direction of the link: a clock of when its last byte has left, and the delay after.
    It counts the bytes it carried and keeps the spans it was busy sending (merged)."""

    def __init__(self, rate_bytes_s: float, delay_s: float):
        self.rate, self.delay, self.free_at = rate_bytes_s, delay_s, 0.0
        self.bytes = 0
        self.busy: list[list[float]] = []  # [start, end] of each span the link sent without a pause

    def arrival(self, size: int, now: float) -> float:
        start = max(now, self.free_at)
        self.free_at = start + size / self.rate
        if self.busy and start <= self.busy[-1][1]:
            self.busy[-1][1] = self.free_at
        else:
            self.busy.append([start, self.free_at])
        self.bytes += size
        return self.free_at + self.delay

    def stats(self, since: float, gap_s: float = 0.005) -> dict:
        """Bytes carried; busy seconds; first and last byte sent and the pauses of at least
        `gap_s` between them (as [start, seconds]), in seconds after `since`."""
        if not self.busy:
            return {
                "bytes": 0,
                "busy_s": 0.0,
                "first_s": None,
                "last_s": None,
                "idle_s": 0.0,
                "gaps": [],
            }
        gaps = [
            [before[1] - since, after[0] - before[1]]
            for before, after in zip(self.busy, self.busy[1:])
        ]
        return {
            "bytes": self.bytes,
            "busy_s": sum(end - start for start, end in self.busy),
            "first_s": self.busy[0][0] - since,
            "last_s": self.busy[-1][1] - since,
            "idle_s": sum(length for _, length in gaps),
            "gaps": [g for g in gaps if g[1] >= gap_s],
        }

    @property
    def window(self) -> int:
        """Bytes one connection may hold in this direction: twice the bandwidth-delay product."""
        return max(int(2 * self.rate * self.delay), 4 * CHUNK)


_FETCH_COMMAND = re.compile(
    rb"^([!#-'*-Z^-z|}~]+) UID FETCH \S+ ([^\r\n]*)", re.IGNORECASE | re.MULTILINE
)
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n\Z")


class FetchWatch:
    """UID FETCH commands of one plain IMAP connection: sent by the client, not yet completed."""

    def __init__(self, proxy: ShapingProxy):
        self.proxy, self.pending, self.line, self.skip, self.fetched = proxy, set(), b"", 0, False
        self.sent = b""

    def client(self, data: bytes) -> None:
        lines, _, self.sent = (self.sent + data).rpartition(b"\n")
        commands = _FETCH_COMMAND.findall(lines)  # FETCH commands carry no literal: one line each
        if commands:
            self.pending.update(tag for tag, _ in commands)
            self.proxy.fetch_items.update(items for _, items in commands)
            if not self.fetched:
                self.fetched = True
                self.proxy.fetch_connections += 1
            self.proxy.max_in_flight = max(self.proxy.max_in_flight, len(self.pending))

    def server(self, data: bytes) -> None:
        """Read tagged completions off the server's stream, stepping over literals."""
        position = 0
        while position < len(data):
            if self.skip:
                taken = min(self.skip, len(data) - position)
                self.skip -= taken
                position += taken
                continue
            end = data.find(b"\n", position)
            if end < 0:
                self.line += data[position:]
                return
            line, self.line, position = self.line + data[position : end + 1], b"", end + 1
            literal = _LITERAL.search(line)
            if literal:
                self.skip = int(literal[1])
            elif self.pending and not line.startswith((b"* ", b"+")):
                self.pending.discard(line.split(b" ", 1)[0])


class ShapingProxy:
    """Listen on a free loopback port and forward to `upstream_port` over the modeled link."""

    def __init__(
        self,
        upstream_port: int,
        *,
        delay_ms: float = 20,
        rate_mbit: float = 100,
        watch: bool = False,
    ):
        self.upstream_port, self.watch = upstream_port, watch
        rate = rate_mbit * 1e6 / 8
        self.up, self.down = Link(rate, delay_ms / 1000), Link(rate, delay_ms / 1000)
        self.port = 0
        self.connections = 0
        self.fetch_connections = 0  # connections that sent a UID FETCH (`watch`)
        self.max_in_flight = 0  # most UID FETCH commands one connection had unanswered (`watch`)
        self.fetch_items: set[bytes] = set()  # what UID FETCH commands asked for, as sent (`watch`)
        self.opened: list[
            float
        ] = []  # when each connection was accepted, and each closed (loop time)
        self.closed: list[float] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> ShapingProxy:
        """Serve on an event loop in a daemon thread (for tests; the bench runs `main`)."""
        ready = threading.Event()

        def run():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def close(self) -> None:
        """Stop listening, drop every connection and stop the thread's loop."""
        if self._loop and self._server:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)

    async def _shutdown(self) -> None:
        self._server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)

    def stats(self) -> dict:
        """What crossed the link since the first connection (`since`, on the monotonic clock): per
        direction, bytes, busy and idle seconds and the pauses (`Link.stats`); when connections
        opened and closed."""
        since = self.opened[0] if self.opened else 0.0
        return {
            "since": since,
            "connections": len(self.opened),
            "opened_s": [round(t - since, 4) for t in self.opened],
            "closed_s": [round(t - since, 4) for t in self.closed],
            "down": self.down.stats(since),
            "up": self.up.stats(since),
        }

    def reset(self) -> None:
        """Forget what was counted (between measurements, with no connection open)."""
        self.up, self.down = (
            Link(self.up.rate, self.up.delay),
            Link(self.down.rate, self.down.delay),
        )
        self.opened, self.closed = [], []

    async def _connection(self, client_reader, client_writer) -> None:
        self.opened.append(asyncio.get_running_loop().time())
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port
            )
        except OSError:
            client_writer.close()
            return
        self.connections += 1
        watch = FetchWatch(self) if self.watch else None
        pipes = {
            asyncio.create_task(
                _pipe(client_reader, server_writer, self.up, watch.client if watch else None)
            ),
            asyncio.create_task(
                _pipe(server_reader, client_writer, self.down, watch.server if watch else None)
            ),
        }
        # A direction that ends cleanly half-closes (the other keeps flowing); one that fails ends both.
        _done, running = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
        for writer in (client_writer, server_writer):
            writer.close()
        await asyncio.gather(*running, return_exceptions=True)
        self.closed.append(asyncio.get_running_loop().time())


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link, seen
) -> None:
    """Copy one direction, each chunk written at its arrival time on `link`."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    room = asyncio.Condition()
    held = [0]

    async def deliver():
        try:
            while (item := await queue.get()) is not None:
                at, data = item
                if (wait := at - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                async with room:
                    held[0] -= len(data)
                    room.notify_all()
            if writer.can_write_eof():
                # The peer may have closed already: nothing left to half-close.
                with contextlib.suppress(OSError):
                    writer.write_eof()
        finally:  # the peer is gone: stop holding the reader back
            async with room:
                held[0] = -1 << 60
                room.notify_all()

    delivering = asyncio.create_task(deliver())
    try:
        while not delivering.done() and (data := await reader.read(CHUNK)):
            if seen:
                seen(data)
            async with room:
                await room.wait_for(lambda: held[0] < link.window)
                held[0] += len(data)
            queue.put_nowait((link.arrival(len(data), loop.time()), data))
    finally:
        queue.put_nowait(None)
        await delivering


def main(argv: list[str] | None = None) -> None:
    # Stopped with SIGTERM by whoever started it: a disposition to ignore it, inherited through
    # exec from a parent that had one, would leave it running and its starter waiting.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parser = argparse.ArgumentParser(
        description="A shaping TCP proxy on loopback: delay and rate per direction."
    )
    parser.add_argument("upstream_port", type=int)
    parser.add_argument(
        "--delay-ms", type=float, default=20, help="one-way delay (default 20: 40 ms round trip)"
    )
    parser.add_argument(
        "--rate-mbit", type=float, default=100, help="rate per direction (default 100 Mbit/s)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one, printed)"
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="on SIGUSR1, print what crossed the link as one JSON line and start counting afresh",
    )
    args = parser.parse_args(argv)
    proxy = ShapingProxy(args.upstream_port, delay_ms=args.delay_ms, rate_mbit=args.rate_mbit)
    proxy.port = args.port

    def report():
        print(json.dumps(proxy.stats()), flush=True)
        proxy.reset()

    async def run():
        await proxy.serve()
        if args.stats:
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report)
        print(proxy.port, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
