"""`python -m bench [--n 20000] [--sections fetch,parse,embed,search,search_service,sensor,backfill,flags,live,live_idle,scale,scaleout] [--out bench/]`:
run the benchmark sections on one synthetic mailbox and merge their figures into results.json and
RESULTS.md."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, report
from bench.mailbox import SCALEOUT_CASES, Workbench
from bench.sections import SECTIONS

# LanceDB's Rust logger prints two deprecation warnings per hybrid search (the product selects
# columns without `_score`/`_distance`); they would bury the progress lines.
os.environ.setdefault("LANCEDB_LOG", "error")

# Each module registers one section at import, in report order.
SECTION_MODULES = (
    "bench.fetch",
    "bench.fetch_wan",
    "bench.parse",
    "bench.embed",
    "bench.search",
    "bench.search_service",
    "bench.sensor",
    "bench.backfill",
    "bench.flags",
    "bench.live",
    "bench.scale",
    "bench.scaleout",
)


def load_sections() -> None:
    for module in SECTION_MODULES:
        importlib.import_module(module)


def cases(text: str) -> list[str]:
    named = [c.strip() for c in text.split(",") if c.strip()]
    unknown = sorted(set(named) - set(SCALEOUT_CASES))
    if unknown or not named:
        raise argparse.ArgumentTypeError(
            f"unknown case(s) {', '.join(unknown)}" if unknown else "no case named"
        )
    return [c for c in SCALEOUT_CASES if c in named]


def ladder(text: str) -> list[int]:
    """`2000,20000` -> [2000, 20000]: sizes, each at least 1, in increasing order."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if not sizes or min(sizes) < 1 or sizes != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(
            f"sizes must be at least 1 and increasing, without repeats: {text!r}"
        )
    return sizes


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", type=int, default=20_000, help="messages in the synthetic mailbox (default 20000)"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, of: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="directory of results.json and RESULTS.md (default: bench/)",
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per figure; the best is kept (default 2)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic mailbox (default 0)"
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "yes", "no"),
        default="auto",
        help="write <out>/profile_fetch.md from extra untimed passes of the raw_messages "
        "stage: auto (default) when a fetch goal is missed",
    )
    parser.add_argument(
        "--embed-sample",
        type=int,
        default=1500,
        help="distinct chunks the model embeds for the embed (and search) section (default 1500)",
    )
    parser.add_argument(
        "--backfill-n",
        type=int,
        default=1000,
        help="messages of the mailbox the backfill section ingests through the daemon (default 1000)",
    )
    parser.add_argument(
        "--backfill-k",
        type=int,
        default=5,
        help="empty days of the backfill section's one-run vs one-run-per-day comparison (default 5)",
    )
    parser.add_argument(
        "--sensor-interval",
        type=int,
        default=60,
        help="MAIL_PIPELINE_SENSOR_INTERVAL of the backfill section's `dagster dev` (default 60, "
        "the product's; new_mail_to_searchable_s is measured at it)",
    )
    parser.add_argument(
        "--scaleout-n",
        type=int,
        default=2000,
        help="messages in each of the scaleout section's two mailboxes over the window (default 2000)",
    )
    parser.add_argument(
        "--scaleout-days",
        type=int,
        default=5,
        help="days of each account the scaleout section backfills, the window's last (default 5)",
    )
    parser.add_argument(
        "--scaleout-cases",
        type=cases,
        default=list(SCALEOUT_CASES),
        help="comma-separated cases of the scaleout section, of "
        f"{','.join(SCALEOUT_CASES)} (default all; the ratios and the S3 against local sensor "
        "ticks need both of their cases)",
    )
    parser.add_argument(
        "--scale-ns",
        type=ladder,
        default=[2_000, 20_000, 200_000],
        help="comma-separated mailbox sizes of the scale section (default 2000,20000,200000)",
    )
    parser.add_argument(
        "--scale-chunks",
        type=ladder,
        default=[100_000, 1_000_000],
        help="chunk counts of the scale section's search store (default 100000,1000000)",
    )
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    small = [
        name
        for name in (
            "n",
            "repeat",
            "embed_sample",
            "backfill_n",
            "sensor_interval",
            "scaleout_n",
            "scaleout_days",
        )
        if getattr(args, name) < 1
    ]
    if unknown or small or args.backfill_k < 2:
        parser.error(
            f"unknown section(s) {', '.join(unknown)}"
            if unknown
            else "--backfill-k must be at least 2"
            if not small
            else f"{', '.join('--' + name.replace('_', '-') for name in small)} must be at least 1"
        )
    return args


def run_sections(bench: Workbench, names: list[str]) -> tuple[dict, list[str]]:
    """Figures of every section that ran; a failing section is reported and skipped."""
    figures: dict = {}
    failed: list[str] = []
    for name in names:
        print(f"== {name}" + ("" if name == "scale" else f" (N = {bench.n:,})"), flush=True)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        try:
            produced = SECTIONS[name].run(bench)
        except Exception:
            traceback.print_exc()
            print(
                f"== {name} FAILED: its figures are left as they were", file=sys.stderr, flush=True
            )
            failed.append(name)
            continue
        # A section measuring other sizes than --n (the scale section's ladder) says its own N.
        figures[f"{name}_n_messages"] = bench.n
        figures.update(produced)
        figures[f"{name}_date"] = datetime.now(UTC).isoformat(timespec="seconds")
        # Sections merge across runs, and machines of one kind differ (AVX-512 on one, not another).
        figures[f"{name}_machine"] = machine.describe()
        # The machine is shared: what else ran while this section measured, in its own words.
        figures[f"{name}_load_average_before"], figures[f"{name}_load_average_after"] = (
            load_before,
            os.getloadavg()[0],
        )
        print(f"== {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    return figures, failed


def main(argv: list[str] | None = None) -> int:
    load_sections()
    args = arguments(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    bench = Workbench(
        args.n,
        out=args.out,
        seed=args.seed,
        repeat=args.repeat,
        profile=args.profile,
        embed_sample=args.embed_sample,
        backfill_n=args.backfill_n,
        backfill_k=args.backfill_k,
        sensor_interval=args.sensor_interval,
        scaleout_n=args.scaleout_n,
        scaleout_days=args.scaleout_days,
        scaleout_cases=args.scaleout_cases,
        scale_ns=args.scale_ns,
        scale_chunks=args.scale_chunks,
    )
    load_before = os.getloadavg()[0]
    try:
        figures, failed = run_sections(bench, args.sections)
    finally:
        bench.close()
    if len(failed) == len(args.sections):
        print("no section succeeded: results left unchanged", file=sys.stderr)
        return 1
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    # Sections merge across runs: each keeps the command that measured it.
    figures.update({f"{name}_command": command for name in args.sections if name not in failed})
    results = report.write(
        args.out,
        {
            **figures,
            **bench.figures,
            "n_messages": args.n,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
            "machine": machine.describe(),
            **machine.versions(),
            # Other processes skew absolute rates; the side-by-side ratios much less.
            "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0],
        },
    )
    for key in sorted(figures):
        if isinstance(results[key], float):
            print(f"{key:36} {results[key]:12,.2f}")
        elif isinstance(results[key], str) and not key.endswith(("_date", "_command", "_machine")):
            print(f"{key:36} {results[key]:>12}")
    print(f"wrote {args.out / report.RESULTS_JSON} and {args.out / report.RESULTS_MD}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
