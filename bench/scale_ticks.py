"""`python -m bench.scale_ticks [--rounds 3]`: the scale section's no-op sensor tick over 20
accounts x 2 folders, with the accounts polled one after another (`sensors.POLL_THREADS` = 1, the
tick before the accounts were polled in parallel) and in parallel (the shipped POLL_THREADS), in
the same process, against the same Dovecot and data directory, alternating: `--rounds` times
TICKS ticks of each. On a loaded machine only the ratio of the two medians means much; the
1-minute load average is printed before and after. Printed only, not written to RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from bench.fetch import settings_environment
from bench.mailbox import Workbench, environment
from bench.scale import TICK_ACCOUNTS, TICKS, tick_accounts, tick_users
from bench.sensor import Ticker
from mail_pipeline_tests.servers import Dovecot


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_ticks")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)

    from dagster import DagsterInstance

    from mail_pipeline.defs import sensors

    bench = Workbench(2_000, out=args.out, seed=0)
    load_before = os.getloadavg()[0]
    server = Dovecot(bench.scratch / "scale-dovecot", users=tick_users()).start()
    shipped, medians = sensors.POLL_THREADS, {}
    ticks: dict[int, list[float]] = {1: [], shipped: []}
    try:
        with environment(**settings_environment(bench)), DagsterInstance.ephemeral() as instance:
            data_dir, _users = tick_accounts(bench, server)
            ticker = Ticker(instance, data_dir)
            if not ticker.tick()[1].run_requests:
                raise RuntimeError("the first tick over the new accounts requested no run")
            for _ in range(args.rounds):
                for threads in ticks:
                    sensors.POLL_THREADS = threads
                    for _ in range(TICKS):
                        ms, result = ticker.tick()
                        if result.run_requests or "failed" in result.skip_reason.skip_message:
                            raise RuntimeError(f"a no-op tick did not skip cleanly: {result}")
                        ticks[threads].append(ms / 1000)
    finally:
        sensors.POLL_THREADS = shipped
        server.stop()
        bench.close()
    for threads, seconds in ticks.items():
        medians[threads] = statistics.median(seconds)
        quartiles = statistics.quantiles(seconds, n=4)
        print(
            f"  no-op tick over {TICK_ACCOUNTS} accounts, POLL_THREADS = {threads}: median "
            f"{medians[threads]:.3f} s, quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f} s, "
            f"{len(seconds)} ticks"
        )
    print(
        f"  serial / parallel median: {medians[1] / medians[shipped]:.2f}x; 1-minute load "
        f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
