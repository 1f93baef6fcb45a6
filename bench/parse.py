"""parse: raw RFC 822 bytes to ParsedEmail with `parse_all`, on one core and on two."""

from __future__ import annotations

import time

from bench.mailbox import Workbench
from bench.sections import Figure, Goal, Section, register


def parse_seconds(raws: list[bytes], workers: int) -> float:
    from mail_pipeline.message.records import parse_all

    started = time.perf_counter()
    parsed = sum(1 for _ in parse_all(raws, workers=workers))
    seconds = time.perf_counter() - started
    if parsed != len(raws):
        raise RuntimeError(f"parse_all returned {parsed} emails for {len(raws)} messages")
    return seconds


def run(bench: Workbench) -> dict[str, float]:
    raws = [m.raw for m in bench.messages]
    figures = {}
    for workers, key in ((1, "parse_msgs_per_s_1core"), (2, "parse_msgs_per_s_2cores")):
        seconds = min(parse_seconds(raws, workers) for _ in range(bench.repeat))
        figures[key] = len(raws) / seconds
        print(
            f"  parse_all(workers={workers}): {len(raws)} messages in {seconds:.2f} s "
            f"({figures[key]:,.0f} msg/s)",
            flush=True,
        )
    figures["parse_mb_per_s_2cores"] = (
        bench.total_bytes / 1e6 * figures["parse_msgs_per_s_2cores"] / len(raws)
    )
    figures["parse_2cores_vs_1core"] = (
        figures["parse_msgs_per_s_2cores"] / figures["parse_msgs_per_s_1core"]
    )
    return figures


register(
    Section(
        name="parse",
        title="Parse: raw bytes to ParsedEmail",
        run=run,
        figures=(
            Figure("parse_msgs_per_s_1core", "`parse_all(workers=1)`", "msg/s"),
            Figure("parse_msgs_per_s_2cores", "`parse_all(workers=2)` (process pool)", "msg/s"),
            Figure("parse_mb_per_s_2cores", "`parse_all(workers=2)` (process pool)", "MB/s", 1),
            Figure("parse_2cores_vs_1core", "speed-up of 2 workers over 1", "×", 2),
        ),
        goals=(Goal("parse_msgs_per_s_2cores", ">=", 1000, "≥ 1,000 msg/s on 2 cores"),),
        method=(
            "`mail_pipeline.message.records.parse_all` over the raw bytes of the same synthetic "
            "messages, held in memory (no I/O), consumed to the end; the 2-worker figure includes "
            "starting the process pool and shipping the bytes to it, as the `emails` asset pays "
            "them. Best of `--repeat` runs."
        ),
    )
)
