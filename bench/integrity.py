"""`python -m bench.integrity [--n 20000]`: what checking a day's files costs a run (storage/integrity.py),
on one day holding the whole synthetic mailbox, against the lake work of the sensor-driven run
that checks them: one new message, so the raw file is rewritten and one message parsed.

No IMAP: the run's own lake work is the baseline (its IMAP round trips only add to it)."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from mail_pipeline.demo.synthetic import iter_mailbox
from mail_pipeline.extract.pool import ExtractionPool
from mail_pipeline.stages.emails import parse_day
from mail_pipeline.storage import integrity, state
from mail_pipeline.storage.lake import Lake, rows_to_batches
from mail_pipeline.storage.schemas import RAW_MESSAGES

DAY = date(2026, 11, 10)
WHEN = datetime(2026, 11, 10, 12, tzinfo=UTC)
ACCOUNT = "bench"


def raw_row(uid: int, raw: bytes) -> dict:
    return {
        "folder": "INBOX",
        "uidvalidity": 1,
        "uid": uid,
        "internaldate": WHEN,
        "flags": [],
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "message_id": None,
        "raw": raw,
        "fetched_at": WHEN,
    }


def best(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.integrity", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lake = Lake(Path(tempfile.mkdtemp(prefix="mp-bench-integrity-")) / "lake")
    raws = [m.raw for m in iter_mailbox(args.n + 1, seed=0)]
    new = raws.pop()
    lake.write_partition(
        "raw_messages",
        ACCOUNT,
        DAY,
        rows_to_batches((raw_row(uid, raw) for uid, raw in enumerate(raws, 1)), RAW_MESSAGES, 64),
    )
    started = time.perf_counter()
    with ExtractionPool() as pool:
        parse_day(lake, ACCOUNT, DAY, pool)
        print(
            f"{args.n:,} messages, {sum(map(len, raws)) / 1e6:.0f} MB on one day; first parse "
            f"{time.perf_counter() - started:.1f} s"
        )
        state.write(
            lake,
            state.RAW,
            ACCOUNT,
            DAY,
            {
                ("INBOX", 1, uid): {"flags": ["\\Seen"], "deleted_at": None}
                for uid in range(1, args.n + 1, 20)
            },
        )
        files = {
            t: lake.partition_file(t, ACCOUNT, DAY)
            for t in ("raw_messages", "emails", "message_state")
        }
        check = {
            table: best(lambda t=table, p=path: integrity.check_file(t, p), args.repeat)
            for table, path in files.items()
        }
        emails_check = best(
            lambda: integrity.partition_damage(lake, ["emails", "email_state"], ACCOUNT, DAY),
            args.repeat,
        )
        # What a rewrite reads of the kept file anyway, and the same read with each message hashed.
        kept = best(
            lambda: sum(b.num_rows for b in lake.iter_batches("raw_messages", ACCOUNT, DAY)),
            args.repeat,
        )
        kept_hashed = best(
            lambda: sum(
                b.num_rows
                for b in integrity.hashed(
                    files["raw_messages"], lake.iter_batches("raw_messages", ACCOUNT, DAY)
                )
            ),
            args.repeat,
        )

        def one_new_message() -> None:
            stored = integrity.hashed(
                files["raw_messages"], lake.iter_batches("raw_messages", ACCOUNT, DAY)
            )
            lake.write_partition(
                "raw_messages",
                ACCOUNT,
                DAY,
                itertools.chain(stored, rows_to_batches([raw_row(args.n + 1, new)], RAW_MESSAGES)),
            )
            parse_day(lake, ACCOUNT, DAY, pool)

        run = statistics.median(best(one_new_message, 1) for _ in range(args.repeat))
    sizes = {t: p.stat().st_size / 1e6 for t, p in files.items()}
    for table, seconds in check.items():
        print(f"check_file {table:<14} {sizes[table]:7.1f} MB  {seconds:6.3f} s")
    print(f"emails stage's check (emails + state file): {emails_check:.3f} s")
    print(
        f"a rewrite's read of the kept raw file: {kept:.3f} s; hashing each message as it passes: {kept_hashed:.3f} s"
    )
    added = kept_hashed - kept + emails_check
    print(
        f"one new message, the run's lake work with its checks (raw rewritten, emails parse_day): {run:.3f} s, "
        f"of which the checks {added:.3f} s ({added / run:.0%})"
    )
    print(
        f"no new mail or flags only: the checks add {check['raw_messages'] + emails_check:.3f} s "
        "(the raw file and the emails file read whole)"
    )


if __name__ == "__main__":
    main()
