"""The shared fixture of every section: one deterministic synthetic mailbox, generated once,
and served by a private Dovecot loaded with MULTIAPPEND (both on first use, both timed)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path

from bench.sections import Figure
from mail_pipeline.demo.synthetic import SyntheticMessage, iter_mailbox
from mail_pipeline_tests.servers import Dovecot

# A fixed window, so every run benchmarks byte-identical mail; MAIL_PIPELINE_TODAY pins the
# pipeline's clock to `END` so the 30-day retention window covers all of it.
END = datetime(2026, 11, 20, tzinfo=UTC)
DAYS = 30
USER = "alice"  # holds the bench mailbox of N messages
FOLDERS = ("INBOX", "Archive")
# The scaleout section's cases, in the order a round runs them (`--scaleout-cases`): each on S3
# (else the local disk), and its workers.
SCALEOUT_CASES = {"1worker": (True, 1), "2workers": (True, 2), "local_2workers": (False, 2)}
# Dovecot users; mailboxes other than USER's are loaded by the sections that need them.
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace")
FIGURES = (
    Figure("mailbox_mb", "synthetic mailbox, total", "MB", 1),
    Figure("mailbox_avg_kb", "average message", "KB", 1),
    Figure("mailbox_archive_messages", "messages in Archive (the rest in INBOX)"),
    Figure("mailbox_generate_s", "generation (`iter_mailbox`, one core)", "s", 1),
    Figure("dovecot_load_s", "load into Dovecot (MULTIAPPEND, 500 per command)", "s", 1),
    Figure("dovecot_load_msgs_per_s", "load into Dovecot (MULTIAPPEND, 500 per command)", "msg/s"),
)


def window_days() -> list[date]:
    """The UTC days the mailbox spans: [END - DAYS, END)."""
    first = (END - timedelta(days=DAYS)).date()
    return [first + timedelta(days=i) for i in range(DAYS)]


class Workbench:
    """What sections share: the mailbox, its Dovecot, a scratch directory, and shared figures."""

    def __init__(
        self,
        n: int,
        *,
        out: Path,
        seed: int = 0,
        repeat: int = 1,
        profile: str = "auto",
        embed_sample: int = 1500,
        backfill_n: int = 1000,
        backfill_k: int = 5,
        sensor_interval: int = 60,
        scaleout_n: int = 2000,
        scaleout_days: int = 5,
        scaleout_cases: list[str] | None = None,
        scale_ns: list[int] | None = None,
        scale_chunks: list[int] | None = None,
    ):
        self.n = n
        self.out = out  # where results and profiles are written
        self.seed = seed
        self.repeat = repeat
        self.profile = profile  # auto (when a goal is missed) | yes | no
        self.embed_sample = embed_sample  # distinct chunks the model embeds in the embed section
        self.backfill_n = backfill_n  # messages of the mailbox the 30-day daemon backfill ingests
        self.backfill_k = backfill_k  # empty days of the per-partition overhead comparison
        self.sensor_interval = sensor_interval  # of `dagster dev` in the backfill section
        # the scaleout section: messages of each of its two mailboxes, and the days it backfills
        self.scaleout_n, self.scaleout_days = scaleout_n, scaleout_days
        self.scaleout_cases = scaleout_cases or list(SCALEOUT_CASES)
        # the scale section's ladder of mailbox sizes and its search store's chunk counts
        self.scale_ns = scale_ns or [2_000, 20_000, 200_000]
        self.scale_chunks = scale_chunks or [100_000, 1_000_000]
        # What one section computes and another reuses (the chunked corpus, the model, vectors).
        self.shared: dict[str, object] = {}
        self._loaded: dict[str, list[SyntheticMessage]] = {}
        # World-traversable: Dovecot's imap processes run as nobody.
        self.scratch = Path(tempfile.mkdtemp(prefix="mp-bench-"))
        self.scratch.chmod(0o755)
        self.figures: dict[str, float] = {}
        self._dovecot: Dovecot | None = None

    @cached_property
    def messages(self) -> list[SyntheticMessage]:
        started = time.perf_counter()
        messages = list(iter_mailbox(self.n, days=DAYS, end=END, seed=self.seed))
        seconds = time.perf_counter() - started
        total = sum(len(m.raw) for m in messages)
        self.figures.update(
            {
                "mailbox_n_messages": len(messages),
                "mailbox_generate_s": seconds,
                "mailbox_mb": total / 1e6,
                "mailbox_avg_kb": total / max(len(messages), 1) / 1e3,
                "mailbox_archive_messages": sum(1 for m in messages if m.folder == "Archive"),
            }
        )
        return messages

    @cached_property
    def total_bytes(self) -> int:
        return sum(len(m.raw) for m in self.messages)

    @property
    def dovecot(self) -> Dovecot:
        """A private Dovecot holding the mailbox in INBOX and Archive (started on first use)."""
        if self._dovecot is None:
            messages = self.messages
            server = Dovecot(
                self.scratch / "dovecot", users={u: f"{u}-{os.urandom(6).hex()}" for u in USERS}
            ).start()
            self._dovecot = server
            started = time.perf_counter()
            server.append([(m.folder, m.raw, m.internaldate) for m in messages], user=USER)
            seconds = time.perf_counter() - started
            self.figures.update(
                {"dovecot_load_s": seconds, "dovecot_load_msgs_per_s": len(messages) / seconds}
            )
            self._loaded[USER] = messages
        return self._dovecot

    def mailbox(self, user: str, n: int, seed: int | None = None) -> list[SyntheticMessage]:
        """`user`'s Dovecot mailbox: `n` synthetic messages of the bench's window and seed (or
        `seed`, for mail unlike the others'), loaded on first use (USER's is the bench mailbox
        itself); INBOX and Archive exist even when empty."""
        server = self.dovecot
        if user not in self._loaded:
            messages = list(
                iter_mailbox(n, days=DAYS, end=END, seed=self.seed if seed is None else seed)
            )
            ensure_folders(server, user)
            server.append([(m.folder, m.raw, m.internaldate) for m in messages], user=user)
            self._loaded[user] = messages
        if len(self._loaded[user]) != n:
            raise ValueError(f"{user}'s mailbox holds {len(self._loaded[user])} messages, not {n}")
        return self._loaded[user]

    @property
    def password(self) -> str:
        return self.dovecot.users[USER]

    def scratch_dir(self, name: str) -> Path:
        """A fresh, empty directory under the scratch root."""
        path = self.scratch / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def close(self) -> None:
        if self._dovecot is not None:
            self._dovecot.stop()
            self._dovecot = None
        shutil.rmtree(self.scratch, ignore_errors=True)


def ensure_folders(server: Dovecot, user: str) -> None:
    """INBOX and Archive in `user`'s mailbox, even where no message goes to one of them."""
    client = server.client(user)
    try:
        existing = {name for _flags, _sep, name in client.list_folders()}
        for folder in set(FOLDERS) - existing:
            client.create_folder(folder)
    finally:
        client.logout()


@contextmanager
def environment(**variables: str):
    """Set environment variables for the block, restoring the previous values after it."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
