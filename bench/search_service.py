"""search_service: the warm search service (`mail-pipeline serve`) over HTTP, and the CLI as a
whole process through it and without it, on the search section's store."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from bench import corpus
from bench.mailbox import Workbench
from bench.search import K, percentile, queries
from bench.sections import Figure, Goal, Section, register
from mail_pipeline_tests.indexed_demo import serving

WARM_UP = 5
CLI_RUNS = 10
COLD_RUNS = 3
REPO = Path(__file__).resolve().parents[1]


def environment(data_dir: Path, search_port: int | None = None) -> dict[str, str]:
    """A `mail-pipeline` process's environment over the store: this checkout first on the path."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MAIL_PIPELINE_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "LANCEDB_LOG": "error",
    }
    if search_port is not None:
        env["MAIL_PIPELINE_SEARCH_PORT"] = str(search_port)
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mail_pipeline.cli", *args]


def service(data_dir: Path, timeout: float = 300.0):
    """`mail-pipeline serve --port 0` over `data_dir`, warm (model loaded, encoder traced); its URL."""
    return serving(cli("serve", "--port", "0"), environment(data_dir), timeout=timeout)


def http_search(base: str, text: str) -> int:
    with urllib.request.urlopen(
        f"{base}/api/search?{urlencode({'q': text, 'mode': 'hybrid', 'k': K})}", timeout=60
    ) as reply:
        return len(reply.read())


def cli_seconds(data_dir: Path, port: int, text: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        cli("search", text, "-k", str(K)),
        env=environment(data_dir, port),
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"mail-pipeline search failed: {done.stderr[-2000:]}")
    return seconds


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(bench: Workbench) -> dict[str, float]:
    from bench.embed import corpus_environment

    with corpus_environment(bench):
        store = corpus.full_store(bench)
        texts = queries(bench, corpus.corpus(bench))
    with service(store.data_dir) as base:
        port = int(base.rsplit(":", 1)[1])
        for text in texts[:WARM_UP]:
            http_search(base, text)
        latencies = []
        for text in texts:
            started = time.perf_counter()
            http_search(base, text)
            latencies.append((time.perf_counter() - started) * 1000)
        warm = [cli_seconds(store.data_dir, port, text) for text in texts[:CLI_RUNS]]
    cold = [cli_seconds(store.data_dir, closed_port(), text) for text in texts[:COLD_RUNS]]
    figures = {
        "search_service_queries": len(texts),
        "search_service_p50_ms": statistics.median(latencies),
        "search_service_p95_ms": percentile(latencies, 0.95),
        "search_cli_warm_p50_s": statistics.median(warm),
        "search_cli_cold_s": statistics.median(cold),
    }
    print(
        f"  service (HTTP, hybrid, k={K}): p50 {figures['search_service_p50_ms']:.1f} ms, "
        f"p95 {figures['search_service_p95_ms']:.1f} ms; CLI through it p50 {figures['search_cli_warm_p50_s']:.2f} s, "
        f"without it {figures['search_cli_cold_s']:.1f} s",
        flush=True,
    )
    return figures


register(
    Section(
        name="search_service",
        title="Search service: `mail-pipeline serve` over HTTP, and `mail-pipeline search` with and without it",
        run=run,
        figures=(
            Figure(
                "search_service_queries",
                "queries timed over HTTP (after 5 untimed warm-up queries)",
            ),
            Figure(
                "search_service_p50_ms",
                "`GET /api/search` (hybrid, k=10), warm service, median",
                "ms",
                1,
            ),
            Figure("search_service_p95_ms", "the same, 95th percentile", "ms", 1),
            Figure(
                "search_cli_warm_p50_s",
                "`mail-pipeline search` as a whole process, through the service, median of 10",
                "s",
                2,
            ),
            Figure(
                "search_cli_cold_s",
                "`mail-pipeline search` with no service running (loads the model), median of 3",
                "s",
                1,
            ),
        ),
        goals=(Goal("search_cli_warm_p50_s", "<=", 1.0, "CLI search through the service ≤ 1.0 s"),),
        method=(
            "The store is the search section's (every chunk of the bench mailbox, `bench/search.py`), and "
            "the queries are its 50. `mail-pipeline serve --port 0` runs as its own process over it and "
            "is timed only once it has announced its URL, i.e. after loading the model and building the "
            "traced query encoder. Each query is one `GET /api/search?mode=hybrid&k=10` from a fresh "
            "urllib connection on loopback, timed from request to the last byte of the JSON. Then "
            "`python -m mail_pipeline.cli search <query> -k 10` runs as a new process for 10 of the "
            "queries, timed from spawn to exit (interpreter start, imports, the health probe, the "
            "search through the service, printing); and, with the service stopped and the port closed, "
            "for 3 queries, where the process loads torch and the model itself."
        ),
    )
)
