"""IMAP IDLE (RFC 2177) on the folder a session has selected: wait until the server reports a
change, for at most a given time, on imapclient's public `idle`, `idle_check` and `idle_done`."""

from __future__ import annotations

from collections.abc import Callable

from mail_pipeline.imap.errors import ImapConnectionLost
from mail_pipeline.imap.session import ImapSession

# Untagged responses that mean the folder changed (RFC 3501 7.3-7.4, RFC 7162 3.2.10 VANISHED):
# new mail, expunges, flags. `* OK Still here` and the like are keep-alives.
CHANGES = frozenset({b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED", b"RECENT"})


def supports_idle(session: ImapSession) -> bool:
    """Whether the server advertises IDLE (RFC 2177 3); servers without it are polled."""
    return b"IDLE" in session.capabilities


def changes_in(responses: list[tuple[object, ...]]) -> list[str]:
    """The kinds of change among IDLE's untagged responses (`(3, b"EXISTS")`, `(2, b"FETCH",
    (...))`, `(b"OK", b"Still here")`); raises ImapConnectionLost on a BYE (RFC 3501 7.1.5)."""
    kinds = []
    for response in responses:
        words = [part for part in response if isinstance(part, bytes)]
        if words and words[0].upper() == b"BYE":
            raise ImapConnectionLost(f"server ended the IDLE session: {response!r}")
        kinds += [w.decode().upper() for w in words[:1] if w.upper() in CHANGES]
    return kinds


def idle_until_change(
    session: ImapSession,
    wait_s: float,
    stopping: Callable[[], bool],
    step_s: float = 5.0,
) -> list[str]:
    """IDLE on the selected folder until the server reports a change, `wait_s` passes or
    `stopping()` holds (checked every `step_s`); the kinds of change seen. DONE is always sent, so
    the session can issue commands again; a dropped connection raises (imapclient's errors)."""
    client = session.client
    client.idle()
    seen: list[str] = []
    waited = 0.0
    try:
        while not seen and waited < wait_s and not stopping():
            step = min(step_s, wait_s - waited)
            seen += changes_in(client.idle_check(timeout=step))
            waited += step
    finally:
        _text, after = client.idle_done()
    return seen + changes_in(after)
