"""Where the raw_messages stage spends its time, written to `<out>/profile_fetch.md`:

1. wall time per phase over one extra stage pass, from thin timers around the product's own
   functions (exclusive time: a phase nested in another is subtracted from it), so the
   shares are those of an unprofiled run;
2. cProfile of a further pass (inflates pure-Python work such as the FETCH parser).

The timers patch module attributes in this process only; nothing in the product changes.
"""

from __future__ import annotations

import cProfile
import hashlib
import io
import pstats
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq

from bench.mailbox import Workbench


class PhaseClock:
    """Exclusive wall time and call counts per label, for nested timed calls. Calls made on
    another thread than the main one (the lake's write-behind) are labelled as overlapped:
    their time runs alongside the main thread's, so it is not part of the total."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.overlapped: set[str] = set()
        self._local = threading.local()

    def timed(self, label: str | Callable[..., str], function: Callable) -> Callable:
        def timed_call(*args, **kwargs):
            name = label(*args, **kwargs) if callable(label) else label
            if threading.current_thread() is not threading.main_thread():
                name = f"{name} [other thread, overlapped]"
                self.overlapped.add(name)
            children = self._local.__dict__.setdefault("children", [])
            children.append(0.0)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[name] += elapsed - children.pop()
                self.calls[name] += 1
                if children:
                    children[-1] += elapsed

        return timed_call


class _Namespace:
    """A module stand-in: one attribute replaced, every other looked up on the original."""

    def __init__(self, original, **replaced):
        self._original, self.__dict__["_replaced"] = original, replaced

    def __getattr__(self, name):
        return self._replaced.get(name) or getattr(self._original, name)


def _fetch_label(_session, _uids, items) -> str:
    if b"BODY.PEEK[]" in items:
        return "FETCH bodies (network + imaplib)"
    return "FETCH INTERNALDATE/SIZE (planning)"


def _window_label(window) -> str:
    """A pipelined FETCH's answer (imap/pipelining.py): the fetching threads' for bodies."""
    if b"BODY.PEEK[]" in window.items:
        return "FETCH bodies (network + imaplib)"
    return "FETCH INTERNALDATE/SIZE (planning)"


@contextmanager
def phase_timers(clock: PhaseClock):
    from mail_pipeline.imap import pipelining
    from mail_pipeline.imap import session as imap
    from mail_pipeline.stages import ingest
    from mail_pipeline.storage import catalog, lake
    from mail_pipeline.sync import plan as sync

    from_pylist = clock.timed("pyarrow RecordBatch.from_pylist", pa.RecordBatch.from_pylist)
    record_batch = _Namespace(pa.RecordBatch, from_pylist=from_pylist)
    patches = [
        (imap.ImapSession, "_uid_fetch", clock.timed(_fetch_label, imap.ImapSession._uid_fetch)),
        (pipelining.FetchWindow, "_next", clock.timed(_window_label, pipelining.FetchWindow._next)),
        (imap, "parse_fetch", clock.timed("FETCH response parsing", imap.parse_fetch)),
        (imap.ImapSession, "select", clock.timed("SELECT (EXAMINE)", imap.ImapSession.select)),
        (
            imap.ImapSession,
            "search_between",
            clock.timed("SEARCH SINCE/BEFORE (planning)", imap.ImapSession.search_between),
        ),
        (sync, "hashlib", _Namespace(hashlib, sha256=clock.timed("sha256", hashlib.sha256))),
        (sync, "header_message_id", clock.timed("Message-ID header regex", sync.header_message_id)),
        (lake, "pa", _Namespace(pa, RecordBatch=record_batch)),
        (
            pq.ParquetWriter,
            "write_batch",
            clock.timed("Parquet write (zstd)", pq.ParquetWriter.write_batch),
        ),
        (pq.ParquetWriter, "close", clock.timed("Parquet write (zstd)", pq.ParquetWriter.close)),
        (
            lake.Lake,
            "read_partition",
            clock.timed("read stored partition", lake.Lake.read_partition),
        ),
        (ingest, "append_log", clock.timed("sync_log append", ingest.append_log)),
        (catalog, "ensure_catalog", clock.timed("DuckDB catalog", catalog.ensure_catalog)),
    ]
    with ExitStack() as stack:
        for owner, name, replacement in patches:
            stack.enter_context(mock.patch.object(owner, name, replacement))
        yield


def phase_table(clock: PhaseClock, total: float) -> list[str]:
    timed = sorted(clock.seconds.items(), key=lambda item: -item[1])
    main = [(name, seconds) for name, seconds in timed if name not in clock.overlapped]
    rest = total - sum(seconds for _name, seconds in main)
    rows = [
        *main,
        ("rest: row dicts, generators, GC, Python glue", rest),
        *[(name, seconds) for name, seconds in timed if name in clock.overlapped],
    ]
    lines = ["| phase | seconds | share | calls | per call |", "|---|---:|---:|---:|---:|"]
    for name, seconds in rows:
        calls = clock.calls.get(name, 0)
        per_call = f"{seconds / calls * 1e3:.3f} ms" if calls else ""
        lines.append(
            f"| {name} | {seconds:.2f} | {seconds / total:.0%} | {calls or ''} | {per_call} |"
        )
    return [*lines, f"| **total** | **{total:.2f}** | 100% | | |"]


def cprofile_text(profiler: cProfile.Profile) -> str:
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs()
    for order in ("tottime", "cumulative"):
        stream.write(f"==== sorted by {order} ====\n")
        stats.sort_stats(order).print_stats(35)
    return stream.getvalue()


def write(bench: Workbench, sync_stage: Callable) -> None:
    clock = PhaseClock()
    seconds, count = sync_stage(bench, around=lambda: phase_timers(clock))
    profiler = cProfile.Profile()
    profiled, _ = sync_stage(bench, around=lambda: _enabled(profiler))
    path = bench.out / "profile_fetch.md"
    path.write_text(
        "\n".join(
            [
                "# Profile of the raw_messages stage",
                "",
                f"`ensure_catalog` + `stages.ingest.ingest` over the {count:,}-message window, written by `python -m bench "
                f"--sections fetch` (`--profile yes`, or by default when a fetch goal is missed).",
                "",
                f"## Phases (unprofiled pass: {seconds:.2f} s, {count / seconds:,.0f} msg/s)",
                "",
                *phase_table(clock, seconds),
                "",
                f"## cProfile (profiled pass: {profiled:.2f} s)",
                "",
                "```",
                cprofile_text(profiler).strip(),
                "```",
                "",
            ]
        )
    )
    print(f"  profile written to {path}", flush=True)


@contextmanager
def _enabled(profiler: cProfile.Profile):
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
