"""flags: after flag changes and expunges on the mailbox, the reconciling sync (the sensor's change
fetch, then raw_messages and emails for the days it names) against the full re-fetch it replaces."""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace
from pathlib import Path

from bench.mailbox import END, FOLDERS, Workbench, environment, window_days
from bench.sections import Figure, Goal, Section, register
from bench.sensor import register_account
from mail_pipeline.imap.session import SEARCH_SLICE
from mail_pipeline.storage import crypto

USER = "erin"  # a copy of the bench mailbox of its own: this section changes it
SLUG = "flags"
# At 20,000 messages (the figure); other sizes scale with the mailbox.
FLAG_CHANGES, EXPUNGES = 1000, 100
FLAGS = (b"\\Seen", b"\\Flagged", b"\\Answered", b"$Work")


def data_dir(bench: Workbench, name: str) -> Path:
    path = bench.scratch_dir(name)
    register_account(path, bench.dovecot, USER, SLUG)
    return path


def lake_files(root: Path) -> dict[Path, tuple[int, int, int]]:
    """Each file under `root`: (inode, mtime, size), which a rewrite (a new file renamed in) changes."""
    return {
        p: (s.st_ino, s.st_mtime_ns, s.st_size)
        for p in root.rglob("*")
        if p.is_file() and (s := p.stat())
    }


def written_bytes(before: dict, after: dict) -> int:
    return sum(ident[2] for path, ident in after.items() if before.get(path) != ident)


def sync(path: Path, days, slug: str = SLUG) -> tuple[float, int, int, int]:
    """raw_messages then emails for `days`, as a run does (no Dagster): seconds, body bytes fetched,
    bytes of lake files written, and the days raw_messages brought current from the changes alone."""
    from mail_pipeline.defs.resources import ImapResource
    from mail_pipeline.extract.pool import ExtractionPool
    from mail_pipeline.stages.emails import parse_day
    from mail_pipeline.stages.ingest import ingest
    from mail_pipeline.storage.lake import Lake

    imap = ImapResource(data_dir=str(path), fernet_key=os.environ[crypto.KEY_VARIABLE])
    account, lake = imap.account(slug), Lake(path / "lake")
    before = lake_files(lake.root)
    started = time.perf_counter()
    outcomes = ingest(
        slug,
        account.folders,
        sorted(days),
        open_session=lambda: imap.session(account),
        lake=lake,
        run_id="bench-flags",
        limits=imap.limits,
    )
    with ExtractionPool() as pool:  # attachment text, as the emails stage reads it
        for day in sorted(days):
            parse_day(lake, slug, day, pool)
    seconds = time.perf_counter() - started
    return (
        seconds,
        sum(o.figures.get("bytes_fetched", 0) for o in outcomes),
        written_bytes(before, lake_files(lake.root)),
        sum(o.figures.get("sync_path") == "changes" for o in outcomes),
    )


def tick(path: Path, cursors, reconcile_flags: bool = False, slug: str = SLUG):
    """The sensor's poll of the account (STATUS, then the change fetch where something moved)."""
    from mail_pipeline.defs.resources import ImapResource
    from mail_pipeline.defs.sensors import lake_lookup
    from mail_pipeline.storage.lake import Lake
    from mail_pipeline.sync import changes

    imap = ImapResource(data_dir=str(path), fernet_key=os.environ[crypto.KEY_VARIABLE])
    account, days = imap.account(slug), window_days()
    with imap.session(account) as session:
        return changes.poll_account(
            session,
            account.folders,
            cursors,
            days[0],
            days[-1],
            stored=lake_lookup(Lake(path / "lake"), slug, days[0], days[-1]),
            reconcile_flags=reconcile_flags,
        )


def change_mailbox(client, n: int, seed: int, n_flags: int, n_expunges: int) -> None:
    """Flip `n_flags` flags and expunge `n_expunges` messages of the `n` in the client's mailbox,
    spread over both folders (seeded); logs the client out."""
    rng = random.Random(seed)
    try:
        for folder in FOLDERS:
            held = client.select_folder(folder)[b"EXISTS"]
            # 50,000 messages (by sequence number) a SEARCH, as the product searches: one answer
            # of 100,000 UIDs is past the longest line imaplib reads (the scale bench's 200k rung).
            uids = sorted(
                uid
                for first in range(1, held + 1, SEARCH_SLICE)
                for uid in client.search(
                    [f"{first}:{min(first + SEARCH_SLICE - 1, held)}".encode()]
                )
            )
            share = len(uids) / n
            for uid in rng.sample(uids, round(n_flags * share)):
                flag = rng.choice(FLAGS)
                (client.remove_flags if rng.random() < 0.3 else client.add_flags)([uid], [flag])
            client.delete_messages(rng.sample(uids, round(n_expunges * share)))
            client.expunge()
    finally:
        client.logout()


def run(bench: Workbench) -> dict[str, float]:
    n_flags, n_expunges = round(FLAG_CHANGES * bench.n / 20_000), round(EXPUNGES * bench.n / 20_000)
    with environment(
        **{
            crypto.KEY_VARIABLE: crypto.generate_key(),
            "MAIL_PIPELINE_TODAY": END.date().isoformat(),
        }
    ):
        bench.mailbox(USER, bench.n)
        synced = data_dir(bench, "flags-synced")
        sync(synced, window_days())
        cursors = tick(synced, {}).cursors
        change_mailbox(bench.dovecot.client(USER), bench.n, bench.seed, n_flags, n_expunges)
        # The fallback of servers without CONDSTORE, on the same server: a cursor without
        # HIGHESTMODSEQ takes that path (MESSAGES count, UID SEARCH, FLAGS in UID ranges).
        started = time.perf_counter()
        fallback = tick(
            synced,
            {f: replace(c, highestmodseq=None) for f, c in cursors.items()},
            reconcile_flags=True,
        )
        fallback_s = time.perf_counter() - started
        started = time.perf_counter()
        poll = tick(synced, cursors)
        tick_s = time.perf_counter() - started
        reconcile_s, reconcile_bytes, reconcile_written, short_days = sync(synced, poll.days)
        refetch_s, refetch_bytes, refetch_written, _ = sync(
            data_dir(bench, "flags-refetch"), window_days()
        )
    total = tick_s + reconcile_s
    if fallback.days != poll.days:
        raise RuntimeError(
            f"the fallback found {len(fallback.days)} days, CONDSTORE {len(poll.days)}"
        )
    print(
        f"  {n_flags} flag changes, {n_expunges} expunges: tick {tick_s:.2f} s ({len(poll.days)} days), "
        f"fallback tick {fallback_s:.2f} s, "
        f"reconciling sync {reconcile_s:.2f} s, full re-fetch {refetch_s:.2f} s; lake bytes written "
        f"{reconcile_written / 1e6:.3f} MB vs {refetch_written / 1e6:.1f} MB",
        flush=True,
    )
    return {
        "flag_sync_changes": n_flags,
        "flag_sync_expunges": n_expunges,
        "flag_sync_days": len(poll.days),
        "flag_sync_short_days": short_days,
        "flag_sync_tick_s": tick_s,
        "flag_sync_fallback_tick_s": fallback_s,
        "flag_sync_s": total,
        "flag_sync_refetch_s": refetch_s,
        "flag_sync_vs_refetch": total / refetch_s,
        "flag_sync_body_mb": reconcile_bytes / 1e6,
        "flag_sync_refetch_body_mb": refetch_bytes / 1e6,
        "flag_sync_written_mb": reconcile_written / 1e6,
        "flag_sync_refetch_written_mb": refetch_written / 1e6,
        "flag_sync_written_vs_refetch": reconcile_written / refetch_written,
    }


SECTION = register(
    Section(
        name="flags",
        title="Flag sync: reconciling flag changes and expunges vs a full re-fetch",
        run=run,
        figures=(
            Figure("flag_sync_changes", "flags changed on the server"),
            Figure("flag_sync_expunges", "messages expunged on the server"),
            Figure("flag_sync_days", "days the sensor tick requested"),
            Figure(
                "flag_sync_short_days",
                "of those, days the run brought current from CHANGEDSINCE/VANISHED alone",
            ),
            Figure("flag_sync_tick_s", "sensor tick (STATUS + CHANGEDSINCE/VANISHED)", "s", 3),
            Figure(
                "flag_sync_fallback_tick_s",
                "sensor tick without CONDSTORE (MESSAGES, UID SEARCH, FLAGS in ranges)",
                "s",
                3,
            ),
            Figure("flag_sync_s", "tick + reconciling raw_messages and emails", "s", 2),
            Figure(
                "flag_sync_refetch_s",
                "full re-fetch: raw_messages and emails from an empty lake",
                "s",
                2,
            ),
            Figure("flag_sync_vs_refetch", "reconciling / full re-fetch (time)", "×", 3),
            Figure(
                "flag_sync_body_mb", "message bodies downloaded by the reconciling sync", "MB", 1
            ),
            Figure(
                "flag_sync_refetch_body_mb",
                "message bodies downloaded by the full re-fetch",
                "MB",
                1,
            ),
            Figure("flag_sync_written_mb", "lake files written by the reconciling sync", "MB", 3),
            Figure(
                "flag_sync_refetch_written_mb", "lake files written by the full re-fetch", "MB", 1
            ),
            Figure(
                "flag_sync_written_vs_refetch",
                "reconciling / full re-fetch (lake bytes written)",
                "×",
                4,
            ),
        ),
        goals=(
            Goal("flag_sync_vs_refetch", "<=", 0.02, "reconciling ≤ 0.02 × full re-fetch"),
            Goal(
                "flag_sync_written_vs_refetch",
                "<=",
                0.02,
                "reconciling writes ≤ 0.02 × the full re-fetch's bytes",
            ),
        ),
        method=(
            "A copy of the bench mailbox (user erin, same seed) is synced into a fresh data directory "
            "(raw_messages then emails over the 30 days, through `stages`, no Dagster) and the sensor's "
            "poll records its cursor. Then 1,000 flags are set or cleared (`\\Seen`, `\\Flagged`, "
            "`\\Answered`, `$Work`) and 100 messages expunged at 20,000 messages (scaled with `--n`), "
            "spread over INBOX and Archive with the bench seed. The fallback tick is the same poll "
            "from a cursor without HIGHESTMODSEQ and with the full flag comparison due, as on a server "
            "without CONDSTORE (it must find the same days). Timed: one poll (STATUS per folder, "
            "then `UID FETCH 1:* (FLAGS INTERNALDATE) (CHANGEDSINCE m VANISHED)` where HIGHESTMODSEQ "
            "moved) plus raw_messages and emails for the days it names (Dovecot offers QRESYNC, so the run "
            "asks each folder what changed since the flag cursor and updates the days' state files from "
            "those rows, `sync/flag_delta.py`, and emails reads the raw state files alone; "
            "`flag_sync_short_days` counts the days it did so, the others took the full plan); against raw_messages and emails "
            "over the 30 days into a second, empty data directory (every body downloaded and parsed "
            "again), which is what a copy without flag sync would need to become current. Bytes written: the "
            "sizes of the lake files each of the two created or replaced (inode, mtime or size changed)."
        ),
    )
)
