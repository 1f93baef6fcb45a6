"""`python -m bench.scale_vectors [--scale-ns 2000,20000]`: the scale section's LanceDB writes
alone, for the ladder's N, with each partition's time and the vector index policy's decisions
printed as the table grows (the profile behind `storage/index_policy.py`). The lake is made by the
scale section's own stages (raw_messages, emails, email_chunks, each in its child process, not
timed here); then the vectors stage runs as in `--sections scale`. Its figures are written to
results.json and RESULTS.md as the scale section's, a partial run of it (its command says so)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, report, scale_chart
from bench.__main__ import ladder, load_sections
from bench.fetch import SLUG, settings_environment
from bench.mailbox import Workbench, environment
from bench.scale import CHART, STAGE_LABELS, load, run_stage
from bench.sensor import register_account
from mail_pipeline_tests.servers import Dovecot

LAKE_STAGES = ("fetch", "emails", "chunks")


def measure(bench: Workbench, server: Dovecot, n: int) -> dict[str, float]:
    user = f"n{n}"
    load(server, user, n, bench.seed)
    data_dir = bench.scratch_dir(f"scale-{n}")
    register_account(data_dir, server, user, SLUG)
    for stage in LAKE_STAGES:
        run_stage(stage, data_dir, 0)
    seconds, count, peak = run_stage("vectors", data_dir, 0)
    print(
        f"  N = {n:,}: vectors {seconds:.1f} s, {count:,} chunks, {seconds / n * 1e6:,.0f} µs/msg, "
        f"peak {peak:.0f} MB",
        flush=True,
    )
    return {
        f"scale_vectors_msgs_per_s_{n}": n / seconds,
        f"scale_vectors_peak_rss_mb_{n}": peak,
        f"scale_chunks_per_msg_{n}": count / n,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_vectors")
    parser.add_argument("--scale-ns", type=ladder, default=[2_000, 20_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    load_sections()  # every section's keys are known, so the merge keeps the other sections' figures
    ns = args.scale_ns
    bench = Workbench(ns[-1], out=args.out, seed=args.seed, scale_ns=ns)
    load_before, figures = os.getloadavg()[0], {}
    users = {f"n{n}": f"n{n}-{os.urandom(6).hex()}" for n in ns}
    server = Dovecot(bench.scratch / "scale-dovecot", users=users).start()
    try:
        with environment(**settings_environment(bench)):
            for n in ns:
                figures.update(measure(bench, server, n))
    finally:
        server.stop()
        bench.close()
    # the section's chart, its one line: RESULTS.md shows it above the figures
    scale_chart.write(args.out / CHART, figures, ns, {"vectors": STAGE_LABELS["vectors"]})
    report.write(
        args.out,
        {
            **figures,
            "scale_ns": ",".join(map(str, ns)),
            "scale_n_messages": ns[-1],
            "scale_date": datetime.now(UTC).isoformat(timespec="seconds"),
            "scale_machine": machine.describe(),
            "scale_load_average_before": load_before,
            "scale_load_average_after": os.getloadavg()[0],
            "scale_command": shlex.join(["python", "-m", "bench.scale_vectors", *argv])
            + " (partial: the LanceDB writes alone)",
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
