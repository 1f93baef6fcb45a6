"""fetch: raw_messages over the whole window against a bare imapclient loop and mbsync, on the
same mailbox, the same Dovecot and TLS, side by side in one run."""

from __future__ import annotations

import os
import ssl
import time
from functools import partial
from pathlib import Path

from imapclient import IMAPClient

from bench import mbsync
from bench.mailbox import DAYS, END, FOLDERS, USER, Workbench, environment, window_days
from bench.sections import Figure, Goal, Section, register
from mail_pipeline.imap.wire import quiet_wire_log
from mail_pipeline.settings import Settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry

SLUG = "bench"
# What a client needs of each message in one FETCH (raw_messages asks for the three small items
# while planning, then for the bodies alone).
CEILING_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE", b"FLAGS", b"RFC822.SIZE"]
# Dagster's console logger prints every event at DEBUG; a deployment's runs do not.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def settings_environment(bench: Workbench) -> dict[str, str]:
    return {
        crypto.KEY_VARIABLE: crypto.generate_key(),
        "MAIL_PIPELINE_TODAY": END.date().isoformat(),
        "MAIL_PIPELINE_RETENTION_DAYS": str(DAYS),
        "MAIL_PIPELINE_DATA_DIR": str(bench.scratch / "unused-data"),
    }


def fresh_data_dir(
    bench: Workbench, name: str, port: int | None = None, compress: str = "auto"
) -> Path:
    """An empty data directory holding only the registered account (TLS, the server's CA), at
    Dovecot's TLS port or `port` (a proxy in front of it)."""
    server = bench.dovecot
    data_dir = bench.scratch_dir(name)
    AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug=SLUG,
            email=f"{USER}@example.test",
            host="127.0.0.1",
            port=port or server.tls_port,
            username=USER,
            password_token="",
            ca_file=server.ca_file,
            folders=FOLDERS,
            compress=compress,
        ),
        bench.password,
        crypto.load_cipher(),
    )
    return data_dir


def bare_imapclient(bench: Workbench, quiet: bool = False) -> tuple[float, int]:
    """The ceiling: CEILING_ITEMS for every UID, in the pipeline's batch size, discarded.

    `quiet` also turns imaplib's wire log off, as the pipeline does (`quiet_wire_log`): a
    ceiling that keeps imapclient's one tuning the pipeline uses, to show how much of the
    pipeline's lead over plain imapclient that tuning is."""
    server, batch = bench.dovecot, Settings().imap_batch_messages
    context = ssl.create_default_context(cafile=server.ca_file)
    started = time.perf_counter()
    client = IMAPClient("127.0.0.1", port=server.tls_port, ssl=True, ssl_context=context)
    if quiet:
        quiet_wire_log(client)
    client.normalise_times = False
    client.login(USER, bench.password)
    fetched = 0
    try:
        for folder in FOLDERS:
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search(["ALL"]))
            for start in range(0, len(uids), batch):
                fetched += len(client.fetch(uids[start : start + batch], CEILING_ITEMS))
    finally:
        client.logout()
    return time.perf_counter() - started, fetched


def raw_messages_run(bench: Workbench) -> tuple[float, int]:
    """The asset itself: one Dagster run over the window's 30 day partitions (a range)."""
    from dagster import DagsterInstance, materialize

    from mail_pipeline.defs.assets import build_mail_assets
    from mail_pipeline.defs.partitions import mail_partitions_for, partition_key
    from mail_pipeline.defs.resources import build_resources

    days = window_days()
    raw_messages = build_mail_assets(mail_partitions_for(Settings().window))[0]
    with (
        environment(MAIL_PIPELINE_DATA_DIR=str(fresh_data_dir(bench, "data-asset"))),
        DagsterInstance.ephemeral() as instance,
    ):
        instance.add_dynamic_partitions("accounts", [SLUG])
        started = time.perf_counter()
        result = materialize(
            [raw_messages],
            resources=build_resources(Settings()),
            instance=instance,
            run_config=QUIET,
            tags={
                "dagster/asset_partition_range_start": partition_key(SLUG, days[0]),
                "dagster/asset_partition_range_end": partition_key(SLUG, days[-1]),
            },
        )
        seconds = time.perf_counter() - started
    per_day = result.asset_materializations_for_node("raw_messages")
    return seconds, sum(
        int(m.metadata["messages_new"].value) for m in per_day if "messages_new" in m.metadata
    )


def sync_stage(
    bench: Workbench,
    around=None,
    port: int | None = None,
    timed_catalog: bool = True,
    compress: str = "auto",
    **imap_fields,
) -> tuple[float, int]:
    """The stage without Dagster: the asset body's calls over the window, into a fresh lake.

    `around`, a context manager factory, wraps the timed part (the profiler uses it); `port`,
    `timed_catalog=False` (the catalog made before the clock starts) and `imap_fields`
    (ImapResource fields: connections, pipeline depth) and `compress` (the account's
    COMPRESS=DEFLATE setting) are for fetch_wan."""
    data_dir = fresh_data_dir(bench, "data-stage", port, compress)
    return ingest_window(data_dir, around, timed_catalog, **imap_fields)


def ingest_window(
    data_dir: Path, around=None, timed_catalog: bool = True, slug: str = SLUG, **imap_fields
) -> tuple[float, int]:
    """`ensure_catalog` + `stages.ingest.ingest` over the window for account `slug` of the data
    directory's registry (the key in the environment): seconds, messages new. The scale section
    runs it in a child process of its own, to read the stage's peak memory."""
    from contextlib import nullcontext

    from mail_pipeline.defs.resources import ImapResource
    from mail_pipeline.stages.ingest import ingest
    from mail_pipeline.storage import catalog
    from mail_pipeline.storage.lake import Lake

    with environment(MAIL_PIPELINE_DATA_DIR=str(data_dir)):
        lake = Lake(data_dir / "lake")
        imap = ImapResource(
            data_dir=str(data_dir), fernet_key=os.environ[crypto.KEY_VARIABLE], **imap_fields
        )
        account = imap.account(slug)
        if not timed_catalog:
            catalog.ensure_catalog(data_dir / "warehouse.duckdb", lake)
        started = time.perf_counter()
        with (around or nullcontext)():
            # a check only, when made above
            catalog.ensure_catalog(data_dir / "warehouse.duckdb", lake)
            days = ingest(
                slug,
                account.folders,
                window_days(),
                open_session=lambda: imap.session(account),
                lake=lake,
                run_id="bench-stage",
                limits=imap.limits,
            )
        return time.perf_counter() - started, sum(d.figures["messages_new"] for d in days)


# (figure prefix, label, measure): each measure returns (seconds, messages moved).
METHODS = (
    ("imap_ceiling", "bare imapclient", bare_imapclient),
    ("imap_ceiling_quiet", "bare imapclient, wire log off", partial(bare_imapclient, quiet=True)),
    ("fetch", "raw_messages (Dagster run)", raw_messages_run),
    ("fetch_stage", "raw_messages (stages.ingest)", sync_stage),
    ("mbsync", "mbsync", mbsync.pull),
    ("mbsync_nofsync", "mbsync, FSync no", partial(mbsync.pull, fsync=False)),
)


def best_seconds(bench: Workbench) -> dict[str, float]:
    """Fastest run of each method over `bench.repeat` rounds; the methods alternate within a
    round, so load from other processes on the machine hits them alike."""
    best: dict[str, float] = {}
    for _ in range(bench.repeat):
        for key, label, measure in METHODS:
            seconds, count = measure(bench)
            if count != bench.n:
                raise RuntimeError(f"{label} moved {count} messages, expected {bench.n}")
            best[key] = min(best.get(key, seconds), seconds)
            print(
                f"  {label:30} {count} messages in {seconds:6.2f} s ({count / seconds:,.0f} msg/s)",
                flush=True,
            )
    return best


def run(bench: Workbench) -> dict[str, float]:
    if not mbsync.available():
        raise RuntimeError(
            "mbsync is not installed (apt-get install isync; `make services` does it)"
        )
    with environment(**settings_environment(bench)):
        _ = bench.dovecot  # loaded before any clock starts
        bare_imapclient(bench)  # warm-up: Dovecot's caches and the page cache, for every method
        best = best_seconds(bench)
        figures = {}
        for key, seconds in best.items():
            figures[f"{key}_msgs_per_s"] = bench.n / seconds
            figures[f"{key}_mb_per_s"] = bench.total_bytes / 1e6 / seconds
        for key in ("fetch", "fetch_stage"):
            figures[f"{key}_vs_ceiling"] = best["imap_ceiling"] / best[key]
            figures[f"{key}_vs_mbsync"] = best["mbsync"] / best[key]
            figures[f"{key}_vs_mbsync_nofsync"] = best["mbsync_nofsync"] / best[key]
            figures[f"{key}_vs_quiet_ceiling"] = best["imap_ceiling_quiet"] / best[key]
        missed = [goal.text for goal in SECTION.goals if not goal.met(figures[goal.key])]
        if bench.profile == "yes" or (bench.profile == "auto" and missed):
            from bench import fetch_profile

            print(
                f"  profiling the stage ({'goal missed: ' + '; '.join(missed) if missed else 'asked'})",
                flush=True,
            )
            fetch_profile.write(bench, sync_stage)
    return figures


def _rates(key: str, label: str) -> tuple[Figure, Figure]:
    return Figure(f"{key}_msgs_per_s", label, "msg/s"), Figure(f"{key}_mb_per_s", label, "MB/s", 1)


SECTION = register(
    Section(
        name="fetch",
        title="Fetch: raw_messages vs bare imapclient vs mbsync",
        run=run,
        figures=(
            *_rates("fetch", "raw_messages, one Dagster run over the 30 day partitions"),
            *_rates("fetch_stage", "raw_messages stage alone (`stages.ingest.ingest`, no Dagster)"),
            *_rates("imap_ceiling", "bare imapclient FETCH loop (ceiling)"),
            *_rates("imap_ceiling_quiet", "bare imapclient FETCH loop, imaplib wire log off"),
            *_rates("mbsync", "mbsync (isync) into a Maildir, defaults (FSync on)"),
            *_rates("mbsync_nofsync", "mbsync (isync) into a Maildir, `FSync no`"),
            Figure("fetch_vs_ceiling", "raw_messages (Dagster run) / ceiling", "×", 2),
            Figure("fetch_vs_mbsync", "raw_messages (Dagster run) / mbsync", "×", 2),
            Figure(
                "fetch_vs_mbsync_nofsync", "raw_messages (Dagster run) / mbsync `FSync no`", "×", 2
            ),
            Figure(
                "fetch_vs_quiet_ceiling",
                "raw_messages (Dagster run) / ceiling with wire log off",
                "×",
                2,
            ),
            Figure("fetch_stage_vs_ceiling", "raw_messages stage alone / ceiling", "×", 2),
            Figure(
                "fetch_stage_vs_quiet_ceiling",
                "raw_messages stage alone / ceiling with wire log off",
                "×",
                2,
            ),
            Figure("fetch_stage_vs_mbsync", "raw_messages stage alone / mbsync", "×", 2),
            Figure(
                "fetch_stage_vs_mbsync_nofsync",
                "raw_messages stage alone / mbsync `FSync no`",
                "×",
                2,
            ),
        ),
        goals=(
            Goal("fetch_vs_ceiling", ">=", 0.8, "raw_messages ≥ 0.8 × bare imapclient"),
            Goal("fetch_vs_mbsync", ">", 1.0, "raw_messages faster than mbsync"),
        ),
        method=(
            "All methods pull every message of INBOX and Archive from the same loopback Dovecot over "
            "implicit TLS (certificate verified), after one untimed warm-up pass of the bare loop; "
            "they alternate within each of the `--repeat` rounds and each figure is the best round. "
            "Every run is checked to have moved all N messages. raw_messages writes into a fresh "
            "data directory each time: the Dagster figure is one `materialize` of the asset over the "
            "partition range of the 30 days (ephemeral instance, in-process executor, console log "
            "at WARNING, timed around `materialize`); the stage figure times `ensure_catalog` + "
            "`stages.ingest.ingest`, what the asset runs, without Dagster. Both use the default "
            "`MAIL_PIPELINE_IMAP_CONNECTIONS` (4: one plans, three fetch, two FETCH commands in flight "
            "each); the bare loop and mbsync use one connection. The bare loop fetches "
            "`BODY.PEEK[] INTERNALDATE FLAGS RFC822.SIZE` for `SEARCH ALL`'s UIDs in batches of "
            "`MAIL_PIPELINE_IMAP_BATCH_MESSAGES` and discards them; the goal's ceiling is imapclient as "
            "it comes, whose imaplib formats every response for a debug log nobody reads, and the "
            "second ceiling turns that off as the pipeline does (`quiet_wire_log`), so the pipeline's "
            "margin from its own FETCH parser and write-behind stands apart from that one setting. "
            "mbsync runs `mbsync -a` into a fresh Maildir, with its defaults and with `FSync no` (the "
            "lake does not fsync either); the default figure is one fsync per message and swings most "
            "with disk and machine load."
        ),
    )
)
