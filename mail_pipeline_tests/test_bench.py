"""The benchmark harness end to end on a small mailbox: `python -m bench` runs, merges its
figures into results.json and regenerates RESULTS.md. No timing is asserted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
FIGURES = [
    "fetch_msgs_per_s",
    "fetch_mb_per_s",
    "fetch_stage_msgs_per_s",
    "imap_ceiling_msgs_per_s",
    "mbsync_msgs_per_s",
    "mbsync_nofsync_msgs_per_s",
    "fetch_vs_ceiling",
    "fetch_vs_mbsync",
    "parse_msgs_per_s_1core",
    "parse_msgs_per_s_2cores",
    "dovecot_load_msgs_per_s",
]


def test_bench_writes_positive_figures_and_keeps_other_sections(tmp_path):
    missing = [
        tool
        for tool in ("dovecot", "mbsync")
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"not installed under CI: {', '.join(missing)}")
        pytest.skip(f"not installed: {', '.join(missing)} (`make services`)")
    (tmp_path / "results.json").write_text(
        json.dumps({"embed_chunks_per_s": 42.0, "retired_figure_ms": 1.0})
    )

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--n",
            "300",
            "--sections",
            "fetch,parse",
            "--out",
            str(tmp_path),
            "--repeat",
            "1",
            "--profile",
            "yes",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text())
    for key in FIGURES:
        assert isinstance(results.get(key), (int, float)) and results[key] > 0, key
    assert results["embed_chunks_per_s"] == 42.0  # another section's figure survives the merge
    assert "retired_figure_ms" not in results  # one no section declares any more does not
    assert results["n_messages"] == 300 and results["fetch_n_messages"] == 300
    for key in (
        "date",
        "machine",
        "python_version",
        "dagster_version",
        "imapclient_version",
        "dovecot_version",
        "mbsync_version",
    ):
        assert isinstance(results[key], str) and results[key], key

    report = (tmp_path / "RESULTS.md").read_text()
    assert "raw_messages ≥ 0.8 × bare imapclient" in report and "≥ 1,000 msg/s on 2 cores" in report
    assert "embed_chunks_per_s" in report
    assert "| FETCH bodies" in (tmp_path / "profile_fetch.md").read_text()


def test_a_section_measured_again_drops_its_older_figures_and_keeps_the_others(tmp_path):
    from bench import report
    from bench.__main__ import load_sections

    load_sections()
    (tmp_path / "results.json").write_text(
        json.dumps(
            {"embed_chunks_per_s": 42.0, "scaleout_1worker_s": 300.0, "scaleout_2workers_s": 200.0}
        )
    )
    merged = report.merge(tmp_path, {"scaleout_date": "2026-12-07", "scaleout_2workers_s": 100.0})
    # A run of the 2-worker case alone: no 1-worker figure of an older run under its date.
    assert merged == {
        "embed_chunks_per_s": 42.0,
        "scaleout_date": "2026-12-07",
        "scaleout_2workers_s": 100.0,
    }


def _needs(*tools: str) -> None:
    missing = [
        tool for tool in tools if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"not installed under CI: {', '.join(missing)}")
        pytest.skip(f"not installed: {', '.join(missing)} (`make services`)")


def _bench(out: Path, *args: str, timeout: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--out", str(out), "--repeat", "1", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def _positive(results: dict, keys: list[str]) -> None:
    for key in keys:
        assert isinstance(results.get(key), (int, float)) and results[key] > 0, (
            key,
            results.get(key),
        )


def test_bench_embed_search_sensor_smoke(tmp_path):
    """The three in-process sections on a tiny mailbox (about 40 s, most of it the model load)."""
    _needs("dovecot")
    results = _bench(
        tmp_path,
        "--n",
        "150",
        "--sections",
        "embed,search,sensor",
        "--embed-sample",
        "24",
        timeout=300,
    )

    _positive(
        results,
        [
            "chunks_produced",
            "chunks_embedded",
            "embed_chunks_per_s",
            "encode_ceiling_chunks_per_s",
            "embed_rerun_chunks_per_s",
            "search_store_rows",
            "search_vector_p50_ms",
            "search_text_p50_ms",
            "search_hybrid_p50_ms",
            "search_hybrid_p95_ms",
            "search_hybrid_words_p50_ms",
            "search_hybrid_cold_p50_ms",
            "sensor_noop_tick_ms_1k",
            "sensor_noop_tick_ms_20k",
            "sensor_noop_tick_ratio",
        ],
    )
    assert results["chunks_embedded"] <= results["chunks_produced"]
    assert results["embed_sample_chunks"] == 24 and results["embed_precision"] in ("fp32", "bf16")
    assert results["embed_backend"] in ("torch fp32", "torch bf16", "openvino fp32")
    assert (
        results["embed_backend_min_cosine"] >= 0.999 and results["embed_speedup_vs_torch_fp32"] > 0
    )
    assert (
        results["embed_torch_fp32_min_cosine"] == 1.0
        or results["embed_torch_fp32_min_cosine"] > 0.99999
    )
    assert (
        results["search_store_rows"] == results["chunks_produced"]
        and results["search_queries"] == 50
    )
    # both capped at N
    assert results["sensor_small_n_messages"] == results["sensor_large_n_messages"] == 150
    report = (tmp_path / "RESULTS.md").read_text()
    for goal in (
        "stage overhead ≤ 10% over bare encode",
        "hybrid search median ≤ 50 ms",
        "no-op tick the same within noise",
        "the chosen runtime keeps the vectors (cosine ≥ 0.999)",
    ):
        assert goal in report


@pytest.mark.e2e
def test_bench_backfill_smoke(tmp_path):
    """The backfill section through a real `dagster dev` at a 3 s sensor interval. It takes about
    3 minutes on 2 shared cores whatever the sizes (`dagster dev`'s start, a process per run)."""
    _needs("dovecot")
    results = _bench(
        tmp_path,
        "--n",
        "20",
        "--sections",
        "backfill",
        "--backfill-n",
        "20",
        "--backfill-k",
        "2",
        "--sensor-interval",
        "3",
        timeout=600,
    )

    _positive(
        results,
        [
            "backfill_single_run_s",
            "backfill_separate_runs_s",
            "backfill_30d_wall_s",
            "backfill_30d_peak_rss_mb",
            "new_mail_to_searchable_s",
            "backfill_30d_chunks",
        ],
    )
    assert results["backfill_single_runs"] == 1 and results["backfill_separate_runs"] == 2
    assert results["backfill_separate_max_parallel"] == 1  # the per-account run limit holds
    assert results["backfill_30d_runs"] == 1 and results["new_mail_sensor_interval_s"] == 3
    assert "new mail searchable ≤ 120 s" in (tmp_path / "RESULTS.md").read_text()


def test_bench_search_service_smoke(tmp_path):
    """The service over HTTP and the CLI with and without it, on a tiny store."""
    results = _bench(
        tmp_path, "--n", "150", "--sections", "search_service", "--embed-sample", "24", timeout=600
    )
    _positive(
        results,
        [
            "search_service_p50_ms",
            "search_service_p95_ms",
            "search_cli_warm_p50_s",
            "search_cli_cold_s",
        ],
    )
    assert results["search_service_queries"] == 50
    assert "CLI search through the service ≤ 1.0 s" in (tmp_path / "RESULTS.md").read_text()


def test_bench_fetch_wan_smoke(tmp_path):
    """The README's `--sections fetch_wan`: the stage and mbsync through the shaping proxy."""
    _needs("dovecot", "mbsync")
    results = _bench(tmp_path, "--n", "200", "--sections", "fetch_wan", timeout=600)
    _positive(
        results,
        [
            "wan_link_mb_per_s",
            "wan_rtt_ms",
            "link_capacity_msgs_per_s",
            "fetch_wan_msgs_per_s",
            "fetch_wan_sequential_msgs_per_s",
            "mbsync_wan_msgs_per_s",
            "fetch_wan_vs_link",
            "fetch_wan_vs_mbsync_wan",
            "fetch_wan_down_mb",
            "mbsync_wan_down_mb",
            "mailbox_deflate_ratio",
            "fetch_wan_compress_link_use",
            "mbsync_wan_link_use",
        ],
    )
    assert 1.0 < results["mailbox_deflate_ratio"] < 10
    assert (
        "raw_messages over the link ≥ 0.8 × link capacity" in (tmp_path / "RESULTS.md").read_text()
    )


def test_deflate_ratio_bounds_what_compression_can_give():
    """The bound fetch_wan reports: text deflates several-fold, random bytes (an attachment's
    compressed content) not at all, and a mailbox of both lands in between."""
    import base64
    import random

    from bench.fetch_wan import deflate_ratio

    text = [b"Subject: budget review\r\n\r\nThe numbers for the quarter are in. " * 40] * 20
    noise = [random.Random(seed).randbytes(3000) for seed in range(20)]
    attachments = [base64.encodebytes(blob) for blob in noise]
    assert deflate_ratio(text) > 5
    assert deflate_ratio(noise) < 1.01
    assert 1.2 < deflate_ratio(attachments) < 1.4  # base64's 4/3, nothing more
    assert deflate_ratio(noise) < deflate_ratio(text + noise) < deflate_ratio(text)


def test_bench_scale_smoke(tmp_path):
    """The scale section on a ladder of 200 and 400 messages and a 3,000-chunk search store: every
    figure named by its N, the chart written, an older ladder's keys dropped from the results."""
    _needs("dovecot")
    (tmp_path / "results.json").write_text(
        json.dumps({"scale_ns": "100", "scale_fetch_msgs_per_s_100": 1.0})
    )
    results = _bench(
        tmp_path,
        "--sections",
        "scale",
        "--scale-ns",
        "200,400",
        "--scale-chunks",
        "3000",
        "--embed-sample",
        "16",
        timeout=900,
    )

    assert results["scale_ns"] == "200,400" and results["scale_chunks"] == "3000"
    assert "scale_fetch_msgs_per_s_100" not in results  # the old ladder's figure left with it
    for n in (200, 400):
        _positive(
            results,
            [
                *(
                    f"scale_{stage}_{figure}_{n}"
                    for stage in ("fetch", "emails", "chunks", "vectors", "embed")
                    for figure in ("msgs_per_s", "peak_rss_mb")
                ),
                f"scale_embed_chunks_per_s_{n}",
                f"scale_lake_bytes_per_msg_{n}",
                f"scale_lancedb_bytes_per_msg_{n}",
                f"scale_flag_reconcile_s_{n}",
                f"scale_retention_s_{n}",
            ],
        )
        # every stage process holds at least the interpreter and pyarrow
        assert results[f"scale_peak_rss_mb_{n}"] >= 50
        assert results[f"scale_chunks_per_msg_{n}"] >= 1
        assert results[f"scale_disk_bytes_per_msg_{n}"] == pytest.approx(
            results[f"scale_lake_bytes_per_msg_{n}"] + results[f"scale_lancedb_bytes_per_msg_{n}"],
            abs=0.01,
        )
    _positive(
        results,
        [
            "scale_fetch_400_vs_200",
            "scale_emails_400_vs_200",
            "scale_noop_tick_20_accounts_s",
            "scale_new_mail_tick_20_accounts_s",
            "scale_search_write_s_3k",
            "scale_search_index_build_s_3k",
            "search_hybrid_p50_ms_3k",
            "search_hybrid_p95_ms_3k",
        ],
    )
    assert results["search_hybrid_p95_ms_3k"] >= results["search_hybrid_p50_ms_3k"]
    chart = tmp_path / "scale.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    report = (tmp_path / "RESULTS.md").read_text()
    assert "](scale.png)" in report and "`scale_fetch_msgs_per_s_400`" in report
    assert "no-op tick over 20 accounts ≤ 1.0 s" in report


def test_bench_scale_vectors_smoke(tmp_path):
    """The scale section's LanceDB writes alone (`python -m bench.scale_vectors`): each day's time
    printed, its figures written as the scale section's, its command saying the run was partial."""
    _needs("dovecot")
    (tmp_path / "results.json").write_text(json.dumps({"new_mail_arrivals": 7}))
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale_vectors", "--scale-ns", "60", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    _positive(
        results,
        ["scale_vectors_msgs_per_s_60", "scale_vectors_peak_rss_mb_60", "scale_chunks_per_msg_60"],
    )
    assert "partial" in results["scale_command"] and results["scale_ns"] == "60"
    assert results["new_mail_arrivals"] == 7  # the live section's figure kept
    days = [line for line in done.stdout.splitlines() if " so far" in line]
    assert len(days) == 30 and days[-1].strip().endswith(
        f"{round(results['scale_chunks_per_msg_60'] * 60):,} so far"
    )
    assert "`scale_vectors_msgs_per_s_60`" in (tmp_path / "RESULTS.md").read_text()
    assert (tmp_path / "scale.png").stat().st_size > 10_000  # the chart RESULTS.md links to


def test_bench_scaleout_smoke(tmp_path):
    """The scaleout section at its smallest: two accounts of 30 messages, one day each, through
    two of its `dagster dev` cases on Celery workers (two on S3, two on local disk; the 1-worker
    case is the same code with one worker) and the sensor ticks; its servers are the harness's
    (SeaweedFS, Redis, PostgreSQL, Dovecot). Mostly fixed start-up (two `dagster dev`, four
    workers, the model cache's OpenVINO conversion)."""
    _needs("dovecot", "redis-server", "taskset")
    results = _bench(
        tmp_path,
        "--n",
        "20",
        "--sections",
        "scaleout",
        "--scaleout-n",
        "30",
        "--scaleout-days",
        "1",
        "--scaleout-cases",
        "2workers,local_2workers",
        timeout=1800,
    )
    _positive(
        results,
        [
            "scaleout_2workers_s",
            "scaleout_local_2workers_s",
            "s3_vs_local_backfill",
            "scaleout_noop_tick_ms_s3",
            "scaleout_noop_tick_ms_local",
        ],
    )
    assert "scaleout_1worker_s" not in results and "scaleout_2workers_vs_1" not in results
    assert results["scaleout_days"] == 1 and results["scaleout_mailbox_n"] == 30
    report = (tmp_path / "RESULTS.md").read_text()
    assert "backfill on S3 ≤ 1.3" in report and "2 workers ≥ 1.7" not in report
