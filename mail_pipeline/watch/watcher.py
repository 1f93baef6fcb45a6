"""The watcher: every active account's synced folders, INBOX first, each held in IDLE on its own
connection up to a per-account budget; the rest (and servers without IDLE) are left to the
sensor's poll. A change wakes the sensor (signals.wake), and new mail (EXISTS) also gets today's
`ingest` run requested at once (launch.py); the watcher never writes the lake."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

from mail_pipeline import logs
from mail_pipeline.auth.tokens import credential_for
from mail_pipeline.imap.connection import ImapConfig, config_for
from mail_pipeline.imap.folders import sync_folders
from mail_pipeline.imap.idle import supports_idle
from mail_pipeline.imap.session import ImapSession
from mail_pipeline.settings import Settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account
from mail_pipeline.sync.changes import inbox_first
from mail_pipeline.watch import signals
from mail_pipeline.watch.folder import DEFAULT_TIMING, FolderWatch, WatchTiming
from mail_pipeline.watch.launch import RunLauncher

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # how often the state file is rewritten (`status`, the compose healthcheck)
# An account whose first sign-in failed (server down, bad password) is tried again this often.
RETRY_ACCOUNT_S = 60.0


def plan_watch(folders: Sequence[str], budget: int) -> tuple[list[str], list[str]]:
    """(held in IDLE, left to the poll): INBOX first, where new mail lands, up to `budget`
    connections; providers cap connections per account (Gmail at 15) and runs need some too."""
    ordered = inbox_first(folders)
    return ordered[:budget], ordered[budget:]


class Watcher:
    """Start with `run(stop)`; returns once `stop` is set and the folder threads have ended."""

    def __init__(self, settings: Settings, timing: WatchTiming = DEFAULT_TIMING) -> None:
        self.settings = settings
        self.timing = timing
        self.registry = settings.registry()
        self.states: list[signals.FolderWatchState] = []
        self.watches: list[FolderWatch] = []
        self.threads: list[threading.Thread] = []
        # New mail's run, requested from the webserver at once (MAIL_PIPELINE_WATCH_RUN_URL).
        self.launcher = (
            RunLauncher(settings.watch_run_url, settings.window.today)
            if settings.watch_run_url
            else None
        )
        self._started: dict[str, float] = {}  # account -> when its start was last tried
        self._done: set[str] = set()

    def session_factory(self, account: Account) -> Callable[[], ImapSession]:
        credential = credential_for(account, self.registry, crypto.load_cipher())
        # No retries inside a command: the folder's own loop reconnects, with no time limit.
        config: ImapConfig = dataclasses.replace(config_for(account, self.settings), retry_s=0)
        return lambda: ImapSession(config, credential)

    def start_account(self, account: Account, stop: threading.Event) -> None:
        """Probe the server once (capabilities, folders), then a thread per watched folder."""
        open_session = self.session_factory(account)
        with open_session() as session:
            idle = supports_idle(session)
            folders = (
                sync_folders(session.list_folders(), account.folders)
                if account.all_folders
                else list(account.folders)
            )
        watched, polled = plan_watch(folders, self.settings.watch_connections if idle else 0)
        for folder in polled:
            self.states.append(signals.FolderWatchState(account.slug, folder, "polled"))
        for folder in watched:
            state = signals.FolderWatchState(account.slug, folder, "reconnecting")
            watch = FolderWatch(
                open_session,
                state,
                self._waker(account.slug, folder),
                stop,
                self.timing,
            )
            thread = threading.Thread(
                target=watch.run, name=f"watch {account.slug}/{folder}", daemon=True
            )
            self.states.append(state)
            self.watches.append(watch)
            self.threads.append(thread)
            thread.start()
        log.info(
            "watching %s: %d folder(s) in IDLE, %d polled%s",
            account.slug,
            len(watched),
            len(polled),
            "" if idle else " (the server does not offer IDLE)",
        )

    def _waker(self, account: str, folder: str) -> Callable[[str], None]:
        def changed(kind: str) -> None:
            log.info("watch %s/%s: %s; waking the new-mail sensor", account, folder, kind)
            signals.wake(self.settings.data_dir, account)
            if self.launcher and "EXISTS" in kind.split(","):  # new mail: its run now
                self.launcher.launch_soon(account)

        return changed

    def start_pending(self, stop: threading.Event) -> None:
        """Start the accounts not started yet, each at most every RETRY_ACCOUNT_S."""
        now = time.monotonic()
        for account in self.registry.list(active_only=True):
            last = self._started.get(account.slug)
            if account.slug in self._done or (last is not None and now - last < RETRY_ACCOUNT_S):
                continue
            self._started[account.slug] = now
            try:
                self.start_account(account, stop)
                self._done.add(account.slug)
            except Exception as error:  # one account's failure never stops the others
                log.warning(
                    "watch %s: cannot start (%s); trying again later",
                    account.slug,
                    logs.redact(str(error)),
                )

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.start_pending(stop)
            signals.write_state(self.settings.data_dir, self.states)
            stop.wait(HEARTBEAT_S)
        for thread in self.threads:
            thread.join(timeout=self.timing.step_s + 5)
        signals.write_state(self.settings.data_dir, [])
