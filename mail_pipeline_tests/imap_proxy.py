"""A loopback, plaintext IMAP proxy in front of the test Dovecot that reshapes its answers the
way other servers word and space theirs, and can play an outage.

The server's stream is read response by response (a line, and for each `{n}` at a line's end
the literal and the line after it), passed through `rewrites`, and written out again with
every `{n}` recomputed; what the client sends is forwarded untouched.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Collection

# One server response as imaplib hands it over: (text ending in `{n}`, literal) per literal,
# then the rest of the line. Rewrites map one response to any number (none drops it).
Response = list[bytes | tuple[bytes, bytes]]
Rewrite = Callable[[Response], list[Response]]

_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r\n\Z")
_FETCH = re.compile(rb"\* \d+ FETCH ")
_UID = re.compile(rb"UID (\d+) ?")


class ImapProxy:
    """Listen on a free loopback port; forward to `upstream_port`, reshaping through `rewrites`."""

    def __init__(self, upstream_port: int, rewrites: list[Rewrite] | None = None):
        self.upstream_port = upstream_port
        self.rewrites: list[Rewrite] = list(rewrites or [])
        self.port = 0
        self.bodies = 0  # FETCH responses with a literal forwarded so far
        self.connections = 0
        self.outages = 0
        self.rewritten = 0  # responses a rewrite changed (a test can check its quirk was played)
        self._outage_at: tuple[int, float] | None = None
        self._restart: threading.Timer | None = None
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> ImapProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection (new ones are refused)."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        for sock in [*([listener] if listener else []), *sockets]:
            _close(sock)

    def outage(self, seconds: float) -> None:
        """Drop every connection now and refuse new ones for `seconds`, then listen again."""
        self.stop()
        self.outages += 1
        self._restart = threading.Timer(seconds, self.start)
        self._restart.start()

    def close(self) -> None:
        if self._restart:
            self._restart.cancel()
        self.stop()

    def outage_after(self, bodies: int, seconds: float) -> None:
        """Play `outage(seconds)` once `bodies` FETCH responses with a literal have been forwarded."""
        self._outage_at = (bodies, seconds)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets |= {client, server}
                self.connections += 1
            threading.Thread(target=self._forward, args=(client, server), daemon=True).start()
            threading.Thread(target=self._answer, args=(server, client), daemon=True).start()

    def _forward(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(target)

    def _answer(self, server: socket.socket, client: socket.socket) -> None:
        reader = server.makefile("rb")
        try:
            while (response := _read_response(reader)) is not None:
                reshaped_all = _apply(self.rewrites, response)
                self.rewritten += reshaped_all != [response]
                for reshaped in reshaped_all:
                    client.sendall(_wire(reshaped))
                    self._count(reshaped)
        except (OSError, ValueError):
            pass
        _close(server)
        _close(client)

    def _count(self, response: Response) -> None:
        if isinstance(response[0], tuple) and _FETCH.match(response[0][0]):
            self.bodies += 1
            if self._outage_at and self.bodies >= self._outage_at[0]:
                seconds, self._outage_at = self._outage_at[1], None
                self.outage(seconds)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _read_response(reader) -> Response | None:
    parts: Response = []
    while True:
        line = reader.readline()
        if not line.endswith(b"\r\n"):
            return None  # the server closed the connection
        literal = _LITERAL_AT_END.search(line)
        if literal is None:
            parts.append(line[:-2])
            return parts
        parts.append((line[:-2], reader.read(int(literal[1]))))


def _apply(rewrites: list[Rewrite], response: Response) -> list[Response]:
    responses = [response]
    for rewrite in rewrites:
        responses = [out for one in responses for out in rewrite(one)]
    return responses


def _wire(response: Response) -> bytes:
    """The response's bytes, each `{n}` set to its literal's length."""
    out = []
    for part in response:
        if isinstance(part, tuple):
            text, literal = part
            out.append(re.sub(rb"\{\d+\}\Z", b"{%d}" % len(literal), text) + b"\r\n" + literal)
        else:
            out.append(part + b"\r\n")
    return b"".join(out)


def _text(response: Response) -> bytes:
    return b"".join(part[0] if isinstance(part, tuple) else part for part in response)


def _is_fetch(response: Response) -> bool:
    first = response[0]
    return bool(_FETCH.match(first[0] if isinstance(first, tuple) else first))


# Reshapings other servers are known for (see issue 14).


def space_before_close(spaces: int = 1) -> Rewrite:
    """`... BODY[] {n}<literal>  )`: qq.com sends one space before the closing paren, Gmail once two."""

    def rewrite(response: Response) -> list[Response]:
        if _is_fetch(response) and response[-1].endswith(b")"):
            response = [*response[:-1], response[-1][:-1] + b" " * spaces + b")"]
        return [response]

    return rewrite


def runs_of_spaces(response: Response) -> list[Response]:
    """Three spaces between items instead of one."""
    if not _is_fetch(response):
        return [response]
    spread = re.compile(rb" (?=(?:UID|FLAGS|INTERNALDATE|RFC822\.SIZE|BODY\[|MODSEQ) )")
    return [
        [
            (spread.sub(b"   ", p[0]), p[1]) if isinstance(p, tuple) else spread.sub(b"   ", p)
            for p in response
        ]
    ]


def uid_last(response: Response) -> list[Response]:
    """`UID n` moved to the end, right after the body literal with no space (Exchange/Office 365)."""
    first = response[0]
    head = first[0] if isinstance(first, tuple) else first
    uid = _UID.search(head)
    if not _is_fetch(response) or uid is None:
        return [response]
    head = head[: uid.start()] + head[uid.end() :]
    response = [(head, first[1]) if isinstance(first, tuple) else head, *response[1:]]
    tail = response[-1]
    glue = b"" if len(response) > 1 and tail == b")" else b" "
    return [[*response[:-1], tail[:-1] + glue + b"UID " + uid[1] + b")"]]


def unsolicited(response: Response) -> list[Response]:
    """Before each FETCH answer, FETCH responses nobody asked for: a flag change without UID in a
    shape this project's parser rejects, one for a UID not requested, and one no parser reads."""
    if not _is_fetch(response):
        return [response]
    return [
        [b'* 1 FETCH (FLAGS (\\Seen) X-ODD ((nested) "x"))'],
        [b"* 2 FETCH (UID 999999 FLAGS (\\Deleted))"],
        [b"* 3 FETCH (FLAGS (\\Seen) ((( garbage"],
        response,
    ]


def no_body_for(uids: Collection[int], *, drop: bool, bodies_only: bool = True) -> Rewrite:
    """The answers for `uids` carry `BODY[] NIL`, or (`drop`) are left out: OK with no data.
    Only answers with a body, unless `bodies_only` is false (then INTERNALDATE/SIZE ones too)."""

    def rewrite(response: Response) -> list[Response]:
        uid = _UID.search(_text(response))
        has_body = isinstance(response[0], tuple)
        if not (
            _is_fetch(response) and (has_body or not bodies_only) and uid and int(uid[1]) in uids
        ):
            return [response]
        if drop or not has_body:
            return []
        text, _literal = response[0]
        return [
            [
                re.sub(rb"\{\d+\}\Z", b"NIL", text)
                + b"".join(p if isinstance(p, bytes) else b"" for p in response[1:])
            ]
        ]

    return rewrite


def no_wording(text: bytes) -> Rewrite:
    """A tagged NO about a missing mailbox reworded to `text`, without Dovecot's `[NONEXISTENT]`."""

    def rewrite(response: Response) -> list[Response]:
        line = response[-1]
        tagged = re.match(rb"([A-Za-z0-9]+) NO (.*)", line) if len(response) == 1 else None
        if tagged and b"exist" in tagged[2]:
            return [[tagged[1] + b" NO " + text]]
        return [response]

    return rewrite


def plain_greeting(response: Response) -> list[Response]:
    """The greeting without the capabilities Dovecot lists in it (optional, RFC 3501 7.1)."""
    line = response[0] if len(response) == 1 else b""
    if isinstance(line, bytes) and line.upper().startswith(b"* OK [CAPABILITY "):
        return [[b"* OK" + line[line.index(b"]") + 1 :]]]
    return [response]


def no_uidnext(response: Response) -> list[Response]:
    """SELECT/EXAMINE answered without `* OK [UIDNEXT n]`, as some servers do."""
    return [] if len(response) == 1 and response[0].startswith(b"* OK [UIDNEXT ") else [response]


def refuse_status(folder: bytes, text: bytes = b"NO [NOPERM] Permission denied") -> Rewrite:
    """STATUS of `folder` refused although LIST still shows it: its untagged STATUS is dropped
    and the tagged OK that follows becomes `text`."""
    refusing = []

    def rewrite(response: Response) -> list[Response]:
        line = response[0] if len(response) == 1 else b""
        if re.match(rb'\* STATUS "?' + re.escape(folder) + rb'"? \(', line):
            refusing.append(line)
            return []
        tagged = re.match(rb"([A-Za-z0-9]+) OK ", line)
        if refusing and tagged:
            refusing.clear()
            return [[tagged[1] + b" " + text]]
        return [response]

    return rewrite


def no_special_use(response: Response) -> list[Response]:
    """LIST without RFC 6154 attributes, as from a server without SPECIAL-USE."""
    line = response[0] if len(response) == 1 else b""
    if not line.startswith(b"* LIST ("):
        return [response]
    uses = re.compile(rb" ?\\(?:All|Archive|Drafts|Flagged|Junk|Sent|Trash)\b", re.IGNORECASE)
    flags_end = line.index(b")")
    return [[line[:8] + uses.sub(b"", line[8:flags_end]).lstrip() + line[flags_end:]]]


def after_first(prefix: bytes, action: Callable[[], None]) -> Rewrite:
    """Run `action` once, as the first answer holding a line that starts with `prefix` (`* LIST `,
    `* STATUS Archive `) completes, before the client reads it: the server changes between a
    client's command and its next one."""
    state = {"seen": False, "done": False}

    def rewrite(response: Response) -> list[Response]:
        line = response[0] if len(response) == 1 else b""
        if line.startswith(prefix):
            state["seen"] = True
        elif state["seen"] and not state["done"] and re.match(rb"[A-Za-z0-9]+ OK ", line):
            state["done"] = True
            action()
        return [response]

    return rewrite


def fetch_no_for(
    uids: Collection[int],
    text: bytes = b"NO Some messages could not be FETCHed (Failure)",
    times: int | None = None,
) -> Rewrite:
    """Gmail's way: the answers for `uids` left out, and the FETCH answered `text` instead of OK
    (the first `times` such FETCHes, or every one)."""
    leave_out = no_body_for(uids, drop=True)
    left_out, answered = [], []

    def rewrite(response: Response) -> list[Response]:
        if times is not None and len(answered) >= times:
            return [response]
        reshaped = leave_out(response)
        if not reshaped:
            left_out.append(True)
        tagged = re.match(rb"([A-Za-z0-9]+) OK ", response[0]) if len(response) == 1 else None
        if left_out and tagged:
            left_out.clear()
            answered.append(True)
            return [[tagged[1] + b" " + text]]
        return reshaped

    return rewrite


def without_capability(name: bytes) -> Rewrite:
    """`name` (e.g. b"IDLE") left out of every capability list: the greeting's, CAPABILITY's and
    LOGIN's `OK [CAPABILITY ...]`, as from a server that does not offer it."""
    word = re.compile(rb"(?<=[ \[])" + re.escape(name) + rb"(?=[ \]\r])", re.IGNORECASE)

    def rewrite(response: Response) -> list[Response]:
        line = response[0] if len(response) == 1 else b""
        if isinstance(line, bytes) and b"CAPABILITY " in line.upper():
            return [[re.sub(rb"  +", b" ", word.sub(b"", line)).replace(b" ]", b"]")]]
        return [response]

    return rewrite
