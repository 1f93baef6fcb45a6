"""One folder held in IDLE on a connection of its own: re-IDLE before the server's 30-minute
limit, reconnect with backoff after any failure, and catch up from the folder's cursor."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mail_pipeline.imap.errors import ImapAuthError, ImapError
from mail_pipeline.imap.idle import idle_until_change, supports_idle
from mail_pipeline.imap.records import FolderStatus
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.watch.signals import FolderWatchState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchTiming:
    # RFC 2177 3: a server may log a client out after 30 minutes of IDLE; re-issued well before.
    reidle_s: float = 25 * 60
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    # A rejected password does not heal by retrying every minute; `account reauth` fixes it.
    auth_backoff_s: float = 600.0
    step_s: float = 5.0  # how soon a stop request ends an IDLE


DEFAULT_TIMING = WatchTiming()


def moved(before: FolderStatus | None, now: FolderStatus, condstore: bool) -> bool:
    """Whether the folder may have changed between two looks: without CONDSTORE flag changes
    leave no trace in UIDNEXT or MESSAGES, so only a server offering it can answer no."""
    if before is None or not condstore or before.highestmodseq is None:
        return True
    return (before.uidvalidity, before.uidnext, before.messages, before.highestmodseq) != (
        now.uidvalidity,
        now.uidnext,
        now.messages,
        now.highestmodseq,
    )


class FolderWatch:
    """IDLE on `state.folder` until `stop` is set; `on_change(kind)` for every change reported
    and for changes made while the connection was down (found by the catch-up on reconnect)."""

    def __init__(
        self,
        open_session: Callable[[], ImapSession],
        state: FolderWatchState,
        on_change: Callable[[str], None],
        stop: threading.Event,
        timing: WatchTiming = DEFAULT_TIMING,
    ) -> None:
        self.open_session = open_session
        self.state = state
        self.on_change = on_change
        self.stop = stop
        self.timing = timing
        self.connections = 0
        self._seen: FolderStatus | None = None

    def run(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            try:
                with self.open_session() as session:
                    if not supports_idle(session):
                        self.state.mode = "polled"  # the sensor's poll covers it, as before
                        return
                    attempt = 0
                    self._watch(session)
            except ImapError as error:
                attempt += 1
                self._failed(error, attempt)
            except Exception as error:  # never let one folder's thread die silently
                attempt += 1
                self._failed(ImapError(f"{type(error).__name__}: {error}"), attempt)

    def _failed(self, error: ImapError, attempt: int) -> None:
        t = self.timing
        delay = min(t.backoff_s * 2 ** (attempt - 1), t.max_backoff_s)
        if isinstance(error, ImapAuthError):
            delay = t.auth_backoff_s
        self.state.mode, self.state.since, self.state.error = "reconnecting", None, str(error)
        log.warning(
            "watch %s/%s: %s; reconnecting in %.0fs",
            self.state.account,
            self.state.folder,
            error,
            delay,
        )
        self.stop.wait(delay)

    def _watch(self, session: ImapSession) -> None:
        status = session.select(self.state.folder, modseq=True)
        self.connections += 1
        condstore = b"CONDSTORE" in session.capabilities
        if moved(self._seen, status, condstore):
            self._changed("catch-up")
        self._seen = status
        self.state.mode, self.state.since, self.state.error = "watched", time.time(), ""
        while not self.stop.is_set():
            kinds = idle_until_change(
                session, self.timing.reidle_s, self.stop.is_set, self.timing.step_s
            )
            if kinds:
                # The catch-up after a reconnect compares with this: unknown until then.
                self._seen = None
                self._changed(",".join(sorted(set(kinds))))

    def _changed(self, kind: str) -> None:
        self.state.last_event, self.state.last_event_at = kind, time.time()
        self.on_change(kind)
