"""scale: how each cost grows with the mail. For each N of the ladder (`--scale-ns`), one account
of N messages on a Dovecot of the section's own: each stage's rate, peak memory and the bytes it
leaves on disk, the flag reconcile and one day's retention; then the sensor tick over 20 accounts
and hybrid search at `--scale-chunks` rows (`bench/scale_search.py`), and the chart."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

from bench import flags, scale_chart, scale_search
from bench.fetch import SLUG, settings_environment
from bench.mailbox import (
    DAYS,
    END,
    FOLDERS,
    Workbench,
    ensure_folders,
    environment,
    window_days,
)
from bench.scale_search import label
from bench.scale_stage import STAGES
from bench.sections import Figure, Goal, Section, register
from bench.sensor import Ticker, register_account
from mail_pipeline.demo.synthetic import iter_mailbox
from mail_pipeline_tests.servers import Dovecot

# Stages timed per message (the model's rate is per chunk, on a fixed sample: see `embed`).
STAGE_LABELS = {
    "fetch": "raw_messages fetch (`stages.ingest`)",
    "emails": "emails parse (`parse_day`)",
    "chunks": "email_chunks (`chunk_day`)",
    "vectors": "email_embeddings' LanceDB writes, random vectors (`embed_day`)",
    "embed": "the model on a fixed sample of chunks (`Embedder.encode`)",
}
TICK_ACCOUNTS = 20
TICK_MESSAGES = 20  # per tick account: the tick asks STATUS, whose cost does not grow with it
TICKS = 10
APPEND_BATCH = 5000  # messages generated and appended at a time: 200,000 never sit in memory
REPO = Path(__file__).resolve().parents[1]


def ladder(results: dict, key: str) -> list[int]:
    return [int(n) for n in str(results.get(key, "")).split(",") if n]


def load(server: Dovecot, user: str, n: int, seed: int) -> int:
    """`n` synthetic messages into `user`'s INBOX and Archive, generated a batch at a time;
    returns their bytes. Both folders exist after it, even one no message went to."""
    ensure_folders(server, user)
    total, batch = 0, []
    for message in iter_mailbox(n, days=DAYS, end=END, seed=seed):
        batch.append((message.folder, message.raw, message.internaldate))
        total += len(message.raw)
        if len(batch) == APPEND_BATCH:
            server.append(batch, user=user)
            batch = []
    if batch:
        server.append(batch, user=user)
    return total


def run_stage(stage: str, data_dir: Path, sample: int) -> tuple[float, int, float]:
    """One stage in a fresh child process: seconds, count, its peak RSS in MB
    (`scale_stage.peak_rss_mb`: the largest single process of the stage, not the sum)."""
    result = data_dir.parent / f"{data_dir.name}-{stage}.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale_stage", stage, str(data_dir), str(result), str(sample)],
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {stage} stage exited with {done.returncode}")
    figures = json.loads(result.read_text())
    return figures["seconds"], figures["count"], figures["peak_mb"]


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure_n(bench: Workbench, server: Dovecot, n: int) -> dict[str, float]:
    """Every per-N figure of one rung of the ladder."""
    user, figures = f"n{n}", {}
    started = time.perf_counter()
    mailbox_bytes = load(server, user, n, bench.seed)
    print(
        f"  N = {n:,}: loaded {mailbox_bytes / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s"
    )
    data_dir = bench.scratch_dir(f"scale-{n}")
    register_account(data_dir, server, user, SLUG)
    peaks = []
    for stage in STAGES:
        seconds, count, peak = run_stage(stage, data_dir, bench.embed_sample)
        if stage == "fetch" and count != n:
            raise RuntimeError(f"raw_messages fetched {count} messages of {n}")
        if count <= 0:
            raise RuntimeError(f"the {stage} stage produced nothing at N = {n}")
        if stage == "embed":
            figures[f"scale_embed_chunks_per_s_{n}"] = count / seconds
        elif stage == "vectors":
            figures[f"scale_chunks_per_msg_{n}"] = count / n
        rate = (
            count / seconds
            if stage != "embed"
            else count / seconds / figures[f"scale_chunks_per_msg_{n}"]
        )
        figures[f"scale_{stage}_msgs_per_s_{n}"] = rate
        figures[f"scale_{stage}_peak_rss_mb_{n}"] = peak
        peaks.append(peak)
        print(
            f"  N = {n:,}: {stage:8} {seconds:7.1f} s, {count:,} done, {rate:8,.1f} msg/s, "
            f"peak {peak:6.0f} MB",
            flush=True,
        )
    figures[f"scale_peak_rss_mb_{label(n)}"] = max(peaks)
    lake, vectors = disk_bytes(data_dir / "lake"), disk_bytes(data_dir / "lancedb")
    figures[f"scale_lake_bytes_per_msg_{n}"] = lake / n
    figures[f"scale_lancedb_bytes_per_msg_{n}"] = vectors / n
    figures[f"scale_disk_bytes_per_msg_{n}"] = (lake + vectors) / n
    figures[f"scale_flag_reconcile_s_{n}"] = reconcile(bench, server, user, n, data_dir)
    figures[f"scale_retention_s_{n}"] = retention(data_dir)
    print(
        f"  N = {n:,}: {(lake + vectors) / n:,.0f} bytes/msg on disk; flag reconcile "
        f"{figures[f'scale_flag_reconcile_s_{n}']:.2f} s; one day's retention "
        f"{figures[f'scale_retention_s_{n}']:.2f} s",
        flush=True,
    )
    return figures


def reconcile(bench: Workbench, server: Dovecot, user: str, n: int, data_dir: Path) -> float:
    """The flags section's reconcile (poll, then raw_messages and emails for the days it names)
    after its share of flag changes and expunges (1,000 and 100 per 20,000 messages)."""
    cursors = flags.tick(data_dir, {}, slug=SLUG).cursors
    n_flags = max(1, round(flags.FLAG_CHANGES * n / 20_000))
    n_expunges = max(1, round(flags.EXPUNGES * n / 20_000))
    flags.change_mailbox(server.client(user), n, bench.seed, n_flags, n_expunges)
    started = time.perf_counter()
    poll = flags.tick(data_dir, cursors, slug=SLUG)
    flags.sync(data_dir, poll.days, slug=SLUG)
    return time.perf_counter() - started


def retention(data_dir: Path) -> float:
    """The retention stage dropping the window's first day from the lake and LanceDB."""
    from mail_pipeline.stages.retention import drop_before
    from mail_pipeline.storage.lake import Lake
    from mail_pipeline.storage.vectors import VectorStore

    store = VectorStore(data_dir / "lancedb")
    started = time.perf_counter()
    dropped = drop_before(window_days()[1], Lake(data_dir / "lake"), lambda: nullcontext(store))
    seconds = time.perf_counter() - started
    if not dropped.partitions.get("raw_messages"):
        raise RuntimeError("retention of one day dropped no raw_messages partition")
    return seconds


def tick_users() -> dict[str, str]:
    """The tick accounts' Dovecot users and passwords (the server is started with them)."""
    return {f"t{i:02}": f"t{i:02}-{os.urandom(6).hex()}" for i in range(1, TICK_ACCOUNTS + 1)}


def tick_accounts(bench: Workbench, server: Dovecot) -> tuple[Path, list[str]]:
    """TICK_ACCOUNTS mailboxes of TICK_MESSAGES messages, each registered as an account of one
    data directory (returned, with the users)."""
    data_dir = bench.scratch_dir("scale-ticks")
    users = [f"t{i:02}" for i in range(1, TICK_ACCOUNTS + 1)]
    for user in users:
        load(server, user, TICK_MESSAGES, bench.seed)
        register_account(data_dir, server, user, user)
    return data_dir, users


def ticks(bench: Workbench, server: Dovecot) -> dict[str, float]:
    """The sensor over TICK_ACCOUNTS accounts × 2 folders: median of no-op ticks, then the tick
    after one new message in one account (it must request a run)."""
    from dagster import DagsterInstance

    data_dir, users = tick_accounts(bench, server)
    with DagsterInstance.ephemeral() as instance:
        ticker = Ticker(instance, data_dir)
        _ms, first = ticker.tick()
        if not first.run_requests:
            raise RuntimeError("the first tick over the new accounts requested no run")
        noop = []
        for _ in range(TICKS):
            ms, result = ticker.tick()
            if result.run_requests:
                raise RuntimeError(f"a tick with no new mail requested runs: {result}")
            noop.append(ms / 1000)
        server.append(
            [("INBOX", new_message(), END - timedelta(hours=1))], user=users[TICK_ACCOUNTS // 2]
        )
        new_ms, result = ticker.tick()
        if not result.run_requests:
            raise RuntimeError("the tick after a new message requested no run")
    figures = {
        "scale_noop_tick_20_accounts_s": statistics.median(noop),
        "scale_new_mail_tick_20_accounts_s": new_ms / 1000,
    }
    print(
        f"  sensor over {TICK_ACCOUNTS} accounts × {len(FOLDERS)} folders: no-op tick median "
        f"{figures['scale_noop_tick_20_accounts_s']:.2f} s, one new message "
        f"{figures['scale_new_mail_tick_20_accounts_s']:.2f} s",
        flush=True,
    )
    return figures


def new_message() -> bytes:
    return (
        b"From: dana@example.test\r\nTo: t11@example.test\r\nSubject: one new message\r\n"
        b"Date: Thu, 19 Nov 2026 23:00:00 +0000\r\nMessage-ID: <scale-new@example.test>\r\n\r\n"
        b"The sensor's one-new-message tick finds this.\r\n"
    )


def pairs(ns: list[int]) -> list[tuple[str, int, int, str]]:
    """(stage, lower N, next N, ratio key) of the rates compared between rungs of the ladder."""
    return [
        (stage, low, high, f"scale_{stage}_{label(high)}_vs_{label(low)}")
        for stage in ("fetch", "emails")
        for low, high in itertools.pairwise(ns)
    ]


def ratios(figures: dict[str, float], ns: list[int]) -> dict[str, float]:
    """Rate at each N over the rate at the N before it, for fetch and emails."""
    return {
        key: figures[f"scale_{stage}_msgs_per_s_{high}"]
        / figures[f"scale_{stage}_msgs_per_s_{low}"]
        for stage, low, high, key in pairs(ns)
    }


def run(bench: Workbench) -> dict[str, float]:
    ns, chunk_counts = bench.scale_ns, bench.scale_chunks
    users = {f"n{n}": f"n{n}-{os.urandom(6).hex()}" for n in ns}
    users.update(tick_users())
    server = Dovecot(bench.scratch / "scale-dovecot", users=users).start()
    figures: dict = {
        "scale_n_messages": ns[-1],
        "scale_ns": ",".join(map(str, ns)),
        "scale_chunks": ",".join(map(str, chunk_counts)),
    }
    try:
        with environment(**settings_environment(bench)):
            for n in ns:
                figures.update(measure_n(bench, server, n))
            figures.update(ratios(figures, ns))
            figures.update(ticks(bench, server))
            figures.update(
                scale_search.measure(bench, bench.scratch / f"scale-{ns[-1]}", chunk_counts)
            )
    finally:
        server.stop()
    scale_chart.write(bench.out / CHART, figures, ns, STAGE_LABELS)
    return figures


CHART = "scale.png"


def figures_for(results: dict) -> tuple[Figure, ...]:
    """The figures named by the ladder the latest run measured."""
    ns, chunk_counts = ladder(results, "scale_ns"), ladder(results, "scale_chunks")
    per_n = tuple(
        figure
        for n in ns
        for figure in (
            *(
                Figure(f"scale_{stage}_msgs_per_s_{n}", f"N = {n:,}: {what}", "msg/s", 1)
                for stage, what in STAGE_LABELS.items()
            ),
            Figure(
                f"scale_embed_chunks_per_s_{n}", f"N = {n:,}: the model's own rate", "chunks/s", 1
            ),
            *(
                Figure(f"scale_{stage}_peak_rss_mb_{n}", f"N = {n:,}: peak RSS, {stage}", "MB")
                for stage in STAGE_LABELS
            ),
            Figure(f"scale_peak_rss_mb_{label(n)}", f"N = {n:,}: the largest stage peak", "MB"),
            Figure(f"scale_chunks_per_msg_{n}", f"N = {n:,}: chunks per message", "", 2),
            Figure(f"scale_lake_bytes_per_msg_{n}", f"N = {n:,}: lake bytes per message", "B"),
            Figure(
                f"scale_lancedb_bytes_per_msg_{n}", f"N = {n:,}: LanceDB bytes per message", "B"
            ),
            Figure(f"scale_disk_bytes_per_msg_{n}", f"N = {n:,}: lake + LanceDB per message", "B"),
            Figure(f"scale_flag_reconcile_s_{n}", f"N = {n:,}: flag reconcile", "s", 2),
            Figure(f"scale_retention_s_{n}", f"N = {n:,}: retention of one day", "s", 2),
        )
    )
    compared = tuple(
        Figure(key, f"{stage} rate at {high:,} / at {low:,}", "×", 2)
        for stage, low, high, key in pairs(ns)
    )
    return per_n + compared + scale_search.figures_for(chunk_counts)


SECTION = register(
    Section(
        name="scale",
        title="Scale: cost per message from 2,000 to 200,000 messages",
        run=run,
        figures=(
            Figure("scale_ns", "the ladder of N (`--scale-ns`)"),
            Figure("scale_chunks", "chunk counts of the search store (`--scale-chunks`)"),
            Figure(
                "scale_noop_tick_20_accounts_s",
                "sensor tick, nothing new, 20 accounts × 2 folders, median",
                "s",
                3,
            ),
            Figure(
                "scale_new_mail_tick_20_accounts_s",
                "sensor tick after one new message, 20 accounts × 2 folders",
                "s",
                3,
            ),
        ),
        figures_for=figures_for,
        goals=(
            Goal("scale_fetch_200k_vs_20k", ">=", 0.9, "fetch rate at 200k ≥ 0.9 × at 20k"),
            Goal("scale_emails_200k_vs_20k", ">=", 0.9, "emails rate at 200k ≥ 0.9 × at 20k"),
            Goal("scale_peak_rss_mb_200k", "<=", 2048, "largest stage peak at 200k ≤ 2,048 MB"),
            Goal(
                "search_hybrid_p50_ms_1m", "<=", 100, "hybrid search median at 1m chunks ≤ 100 ms"
            ),
            Goal("scale_noop_tick_20_accounts_s", "<=", 1.0, "no-op tick over 20 accounts ≤ 1.0 s"),
        ),
        method=(
            f"![cost per message against N, log–log]({CHART})\n\n"
            "For each N of `--scale-ns`, one account of N synthetic messages (the bench's window and "
            "seed, generated and appended 5,000 at a time) on a Dovecot of the section's own, over "
            "implicit TLS. Each stage runs over the 30 days in a fresh child process "
            "(`python -m bench.scale_stage`), timed inside it, in the pipeline's order into one data "
            "directory: raw_messages (`ensure_catalog` + `stages.ingest.ingest`), emails (`parse_day` "
            "with the attachment pool), email_chunks (`chunk_day`, the model's tokenizer), "
            "email_embeddings' LanceDB writes (`embed_day` with random unit vectors in place of the "
            "model, so the rows, indexes and bytes are N's), and the model itself on a fixed sample of "
            "`--embed-sample` chunk texts: it embeds about 100 chunks/s on this CPU, so its msg/s is "
            "its chunk rate over the chunks per message, not a run over every chunk. Peak RSS is "
            "read by the stage's process as it ends: its own `VmHWM` (`/proc/self/status`, its "
            "address space from exec on) or, if larger, `ru_maxrss` of the worker processes it "
            "reaped (`RUSAGE_CHILDREN`: the parse and attachment pools): the largest single process, "
            "not their sum. (`os.wait4` in the bench would not do: a child's `ru_maxrss` keeps the "
            "high-water mark of the bench process it was forked from.) Bytes on "
            "disk: every file under `lake/` and `lancedb/` after the stages, over N. The flag "
            "reconcile is the flags section's (1,000 flag changes and 100 expunges per 20,000 "
            "messages, then the poll and raw_messages + emails for the days it names); retention "
            "drops the window's first day from the lake and LanceDB (`stages.retention.drop_before`). "
            "The sensor figures are `new_mail_sensor` evaluated as the sensor section does, over one "
            "data directory of 20 accounts (20 messages each) with INBOX and Archive: the median of "
            "10 ticks with nothing new, then one tick after a message is appended to one account. "
            "Search: a LanceDB table of each `--scale-chunks` count, whose text, account, day and "
            "header columns are the largest N's real chunks repeated and whose vectors are synthetic "
            "random unit vectors (the index figure, not relevance); written unindexed, then every "
            "index the store keeps built once and timed, then `search.search` in hybrid mode as the "
            "search section times it (50 queries after 5 warm-ups)."
        ),
    )
)
