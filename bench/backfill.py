"""backfill: through the real daemon (`dagster dev` + `mail-pipeline backfill`), K empty days as
one run against K single-partition runs, a 30-day backfill of a small mailbox, and how long new mail
takes to become searchable at the sensor's interval."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.daemon import FirstFound, MemorySampler, Stack, max_parallel, write_timeline
from bench.mailbox import END, Workbench, environment, window_days
from bench.sections import Figure, Goal, Section, register
from bench.sensor import add_account
from mail_pipeline.stages import STAGES
from mail_pipeline_tests.dagster_process import wait_until

QUIET, QUIET_USER = "quiet", "dave"  # no mail at all: the empty days, then the one new message
MAILBOX, MAILBOX_USER = "mailbox", "carol"  # --backfill-n messages over the 30 days
# Outside the K-day budget of the stage itself: the daemon looks at the run queue every 5 s
# (Dagster's default), and a run starts a process.
PICKUP_S = 60


def register_accounts(bench: Workbench, data_dir) -> None:
    """QUIET active (the sensor keeps its cursor; it gets the new message), MAILBOX paused (the
    sensor registers its partitions and leaves its mail to the CLI backfill)."""
    from mail_pipeline.storage.accounts import AccountRegistry

    registry = AccountRegistry(data_dir / "accounts.json")
    for slug, user in ((QUIET, QUIET_USER), (MAILBOX, MAILBOX_USER)):
        add_account(registry, bench.dovecot, user, slug)
    registry.set_active(MAILBOX, False)


def keys(account: str, days) -> set[str]:
    from mail_pipeline.defs.partitions import partition_key

    return {str(partition_key(account, day)) for day in days}


def empty_days(stack: Stack, k: int) -> dict[str, float]:
    """K empty days of QUIET as one CLI backfill (the single-run policy makes it one run), then K
    other empty days as K single-partition runs queued at once, as the sensor requests them."""
    last = END.date() - timedelta(days=1)
    together = [last - timedelta(days=i) for i in range(k - 1, -1, -1)]
    apart = [day - timedelta(days=k) for day in together]

    started = time.perf_counter()
    single_id = stack.backfill(QUIET, together[0], together[-1])
    stack.wait_materialized(
        keys(QUIET, together), PICKUP_S + 60 * k, f"{k} empty days in one backfill"
    )
    single_wall = time.perf_counter() - started
    single = stack.backfill_runs([single_id])

    started = time.perf_counter()
    run_ids = [stack.launch_partition_run(QUIET, day) for day in apart]
    stack.wait_materialized(keys(QUIET, apart), PICKUP_S + 60 * k, f"{k} single-partition runs")
    apart_wall = time.perf_counter() - started
    separate = stack.finished_runs(run_ids)

    single_s, separate_s = sum(r.seconds for r in single), sum(r.seconds for r in separate)
    span = max(r.ended for r in separate) - min(r.launched for r in separate)
    print(
        f"  {k} empty days: one backfill {single_wall:.1f} s wall, {len(single)} run(s) {single_s:.1f} s; "
        f"{k} single-partition runs {apart_wall:.1f} s wall, {separate_s:.1f} s of runs over {span:.1f} s "
        f"(at most {max_parallel(separate)} at once)",
        flush=True,
    )
    return {
        "backfill_k_days": k,
        "backfill_single_runs": len(single),
        "backfill_single_run_s": single_s,
        "backfill_single_wall_s": single_wall,
        "backfill_separate_runs": len(separate),
        "backfill_separate_runs_s": separate_s,
        "backfill_separate_span_s": span,
        "backfill_separate_wall_s": apart_wall,
        "backfill_separate_max_parallel": max_parallel(separate),
        # K runs cost K x (run overhead + day) and one run overhead + K x day, so the difference
        # over K - 1 is what a day pays for having a run of its own.
        "backfill_per_partition_overhead_s": (separate_s - single_s) / (k - 1),
        "backfill_single_run_per_partition_s": single_s / k,
        "backfill_separate_vs_single": separate_s / single_s,
    }


def unique_message(subject: str) -> tuple[str, Callable[[], bool]]:
    """A word no mailbox holds, and a check that `search(word, mode="text")` finds the message of
    that subject."""
    from mail_pipeline.indexing.search import EmptyStoreError, search
    from mail_pipeline.settings import Settings

    word = "zebu" + "".join(chr(ord("a") + b % 26) for b in os.urandom(8))

    def found() -> bool:
        try:
            return any(
                hit.subject == subject
                for hit in search(word, k=5, mode="text", settings=Settings())
            )
        except EmptyStoreError:
            return False

    return word, found


def thirty_days(bench: Workbench, stack: Stack) -> dict[str, float]:
    """MAILBOX's 30 days in one backfill: wall until every stage holds the 30 partitions, and the
    peak memory of the `dagster dev` process tree meanwhile."""
    from mail_pipeline.storage.vectors import VectorStore
    from mail_pipeline_tests.mailgen import message

    days = window_days()
    # The newest day's one message only this backfill can make searchable.
    word, found = unique_message("Newest day of the backfill")
    when = datetime.combine(days[-1], datetime.min.time(), UTC).replace(hour=9)
    bench.dovecot.append(
        [
            (
                "INBOX",
                message(
                    f"bench-{word}",
                    when,
                    subject="Newest day of the backfill",
                    body=f"The {word} memo is attached.\r\n",
                ),
                when,
            )
        ],
        user=MAILBOX_USER,
    )
    with MemorySampler(stack.server.process.pid) as memory, FirstFound(found) as first_day:
        started = time.perf_counter()
        backfill_id = stack.backfill(MAILBOX, days[0], days[-1])
        stack.wait_materialized(keys(MAILBOX, days), 3600, "the 30-day backfill")
        wall = time.perf_counter() - started
        wait_until(
            lambda: first_day.seconds is not None, 60, "the newest day's message found by search"
        )
    runs = stack.backfill_runs([backfill_id])
    write_timeline(bench.out / "backfill_memory.csv", memory.timeline)
    steps = {
        stage: sum(stack.step_seconds(r.run_id).get(stage, 0.0) for r in runs) for stage in STAGES
    }
    chunks = VectorStore(stack.data_dir / "lancedb").count(account=MAILBOX)
    print(
        f"  30 days, {bench.backfill_n:,} messages: {wall:.1f} s wall, {len(runs)} run(s) "
        f"{sum(r.seconds for r in runs):.1f} s; peak RSS {memory.peak_tree / 2**20:,.0f} MB (tree), "
        f"{memory.peak_process / 2**20:,.0f} MB (largest process); at the peak: "
        + ", ".join(f"{role} {rss / 2**20:,.0f} MB" for role, rss in sorted(memory.at_peak.items()))
        + f"; newest day searchable after {first_day.seconds:.1f} s; steps: "
        + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in steps.items()),
        flush=True,
    )
    return {
        "backfill_first_day_searchable_s": first_day.seconds,
        "backfill_30d_messages": bench.backfill_n,
        "backfill_30d_chunks": chunks,
        "backfill_30d_wall_s": wall,
        "backfill_30d_runs": len(runs),
        "backfill_30d_run_s": sum(r.seconds for r in runs),
        "backfill_30d_peak_rss_mb": memory.peak_tree / 2**20,
        "backfill_30d_peak_process_rss_mb": memory.peak_process / 2**20,
        **{f"backfill_30d_step_s_{stage}": seconds for stage, seconds in steps.items()},
    }


def new_mail(bench: Workbench, stack: Stack) -> dict[str, float]:
    """One message with a unique word appended to QUIET's INBOX; `query.search(word, mode="text")`
    polled until it finds it. The sensor has been ticking at its interval since the stack
    started, so the append falls at an arbitrary point of its cycle."""
    from mail_pipeline_tests.mailgen import message

    word, found = unique_message("Benchmark arrival")
    when = END.replace(hour=10)  # today of the pinned clock
    appended = time.time()
    bench.dovecot.append(
        [
            (
                "INBOX",
                message(
                    f"bench-{word}",
                    when,
                    subject="Benchmark arrival",
                    body=f"The {word} report is ready.\r\n",
                ),
                when,
            )
        ],
        user=QUIET_USER,
    )
    wait_limit = bench.sensor_interval + 300
    deadline = time.monotonic() + wait_limit
    while not found():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the new message was not searchable after {wait_limit} s")
        stack.raise_on_failed_runs()
        time.sleep(0.25)
    searchable = time.time()
    runs = list(
        stack.runs(**{"mail_pipeline/trigger": "new_mail_sensor", "mail_pipeline/account": QUIET})
    )
    if not runs:
        raise RuntimeError("the new message became searchable without a sensor run")
    requested = min(r.create_timestamp.timestamp() for r in runs)
    latency, after_tick = searchable - appended, searchable - requested
    print(
        f"  new mail searchable after {latency:.1f} s: the sensor requested its run after "
        f"{requested - appended:.1f} s, searchable {after_tick:.1f} s later",
        flush=True,
    )
    return {
        "new_mail_sensor_interval_s": bench.sensor_interval,
        "new_mail_to_searchable_s": latency,
        "new_mail_tick_wait_s": requested - appended,
        "new_mail_run_to_searchable_s": after_tick,
        "new_mail_worst_case_s": bench.sensor_interval + after_tick,
    }


def stack_environment(bench: Workbench, data_dir) -> dict[str, str]:
    from bench.fetch import settings_environment
    from mail_pipeline.cli.processes import MEMORY_ENVIRONMENT

    # As `mail-pipeline run` starts Dagster (processes.child_environment).
    return {
        **settings_environment(bench),
        **MEMORY_ENVIRONMENT,
        "MAIL_PIPELINE_DATA_DIR": str(data_dir),
        "MAIL_PIPELINE_SENSOR_INTERVAL": str(bench.sensor_interval),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def run(bench: Workbench) -> dict[str, float]:
    bench.mailbox(QUIET_USER, 0)
    bench.mailbox(MAILBOX_USER, bench.backfill_n)
    data_dir = bench.scratch_dir("backfill")
    env = stack_environment(bench, data_dir)
    with environment(**env):
        register_accounts(bench, data_dir)
        stack = Stack(data_dir, env)
        try:
            figures = {"backfill_dagster_start_s": stack.start()}
            # The sensor's first tick registers both accounts' partitions and QUIET's cursor.
            wait_until(
                lambda: {QUIET, MAILBOX} <= set(stack.instance.get_dynamic_partitions("accounts")),
                120,
                "the sensor's first tick",
            )
            figures.update(empty_days(stack, bench.backfill_k))
            figures.update(thirty_days(bench, stack))
            figures.update(new_mail(bench, stack))
        except Exception:
            print(f"dagster dev log, last lines:\n{stack.log_tail()}", flush=True)
            raise
        finally:
            stack.stop()
    return figures


register(
    Section(
        name="backfill",
        title="Backfill: through the daemon, one run vs a run per day; 30 days; new mail to search",
        run=run,
        figures=(
            Figure(
                "backfill_dagster_start_s", "`dagster dev` start until its GraphQL answers", "s", 1
            ),
            Figure("backfill_k_days", "K, empty days per comparison"),
            Figure("backfill_single_runs", "one K-day backfill: runs it made"),
            Figure(
                "backfill_single_run_s",
                "one K-day backfill: run time (process start to success)",
                "s",
                1,
            ),
            Figure(
                "backfill_single_wall_s",
                "one K-day backfill: launch to every stage materialized",
                "s",
                1,
            ),
            Figure("backfill_separate_runs", "K single-partition runs: runs"),
            Figure("backfill_separate_runs_s", "K single-partition runs: run time, summed", "s", 1),
            Figure(
                "backfill_separate_span_s",
                "K single-partition runs: first process start to last run end",
                "s",
                1,
            ),
            Figure(
                "backfill_separate_wall_s",
                "K single-partition runs: launch to every stage materialized",
                "s",
                1,
            ),
            Figure(
                "backfill_separate_max_parallel",
                "K single-partition runs: most at once (per-account limit 1)",
            ),
            Figure(
                "backfill_per_partition_overhead_s",
                "per-partition overhead of a run per day: (K runs − 1 run) / (K − 1)",
                "s",
                1,
            ),
            Figure(
                "backfill_single_run_per_partition_s", "a day's share of the one K-day run", "s", 2
            ),
            Figure(
                "backfill_separate_vs_single",
                "K single-partition runs / one K-day run (run time)",
                "×",
                1,
            ),
            Figure("backfill_30d_messages", "30-day backfill: messages in the mailbox", "messages"),
            Figure("backfill_30d_chunks", "30-day backfill: chunk vectors stored", "chunks"),
            Figure("backfill_30d_runs", "30-day backfill: runs it made"),
            Figure("backfill_30d_run_s", "30-day backfill: run time", "s", 1),
            Figure(
                "backfill_30d_wall_s",
                "30-day backfill: launch to 30 partitions of every stage",
                "s",
                1,
            ),
            Figure(
                "backfill_first_day_searchable_s",
                "30-day backfill: launch until the newest day's message is found by search",
                "s",
                1,
            ),
            *(
                Figure(f"backfill_30d_step_s_{stage}", f"30-day backfill: step `{stage}`", "s", 1)
                for stage in STAGES
            ),
            Figure(
                "backfill_30d_peak_rss_mb",
                "30-day backfill: peak RSS, `dagster dev` process tree (sum)",
                "MB",
            ),
            Figure(
                "backfill_30d_peak_process_rss_mb",
                "30-day backfill: peak RSS, largest process (the run worker)",
                "MB",
            ),
            Figure(
                "new_mail_sensor_interval_s",
                "sensor interval (`MAIL_PIPELINE_SENSOR_INTERVAL`)",
                "s",
            ),
            Figure(
                "new_mail_to_searchable_s",
                "new message: APPEND to found by `search --mode text`",
                "s",
                1,
            ),
            Figure("new_mail_tick_wait_s", "of which until the sensor requested its run", "s", 1),
            Figure(
                "new_mail_run_to_searchable_s", "of which from the request to searchable", "s", 1
            ),
            Figure(
                "new_mail_worst_case_s",
                "worst case: a full interval + request to searchable",
                "s",
                1,
            ),
        ),
        goals=(
            Goal(
                "backfill_separate_vs_single",
                ">",
                1.0,
                "K empty days cheaper as one run than as K runs",
            ),
            Goal(
                "backfill_first_day_searchable_s",
                "<=",
                120,
                "the newest day of a 30-day backfill searchable ≤ 120 s",
            ),
            Goal(
                "backfill_30d_peak_rss_mb",
                "<=",
                2048,
                "30-day backfill: peak RSS of the process tree ≤ 2 GB",
            ),
            Goal(
                "new_mail_to_searchable_s",
                "<=",
                120,
                "new mail searchable ≤ 120 s (sensor at its 60 s default)",
            ),
            Goal(
                "new_mail_worst_case_s",
                "<=",
                120,
                "worst case (a whole interval of waiting) ≤ 120 s",
            ),
        ),
        method=(
            "`dagster dev` (via `mail_pipeline_tests.dagster_process.DagsterDev`) on a fresh DAGSTER_HOME "
            "from `mail_pipeline.cli.pipeline.write_instance_config` (SQLite, run queue with the per-account "
            "limit, retries), the clock pinned to the bench window, the same Dovecot over TLS, the sensor "
            "running at `--sensor-interval` (default 60 s, the product's). Two accounts: `quiet` (no mail) "
            "and `mailbox` (`--backfill-n` messages of the bench window, paused so the sensor only "
            "registers its partitions). Backfills are launched with the `mail-pipeline backfill` CLI "
            "against the webserver; every stage's materialized partitions are read from the instance "
            "every 0.5 s. Per-partition overhead: K empty days of `quiet` as one backfill (the assets' "
            "single-run policy makes it one run), then K other empty days as K single-partition runs of "
            "the `ingest` job queued at once through GraphQL `launchRun` with the tags the sensor's "
            "RunRequests carry (`dagster/partition` and its dimension tags, which the per-account run "
            "limit keys on): what a run per day costs. A run's time is from its RUN_STARTING event (the "
            "launcher starts its process) to its end; the daemon's pickup (the CLI queues the runs itself; "
            "run queue every 5 s) is only in the wall figures. The overhead per partition is (the K "
            "runs' summed run time − the one run's) / (K − 1): K runs pay K run overheads, one run "
            "pays one. One round "
            "each. 30 days: one backfill of `mailbox` over the window, timed from launch until all four "
            "stages hold the 30 partitions (pickup, run process, IMAP, parse, chunk, model load and "
            "embedding on this CPU); RSS is summed over the `dagster dev` process tree every 0.5 s with "
            "psutil (the run shows each part's share at the peak; every sample is written to "
            "`backfill_memory.csv` beside the results), with the environment `mail-pipeline run` gives "
            "Dagster (`processes.MEMORY_ENVIRONMENT`). Before the backfill one message with a unique word "
            "is APPENDed to `mailbox`'s INBOX on the window's newest day; from the launch, "
            '`search(word, mode="text")` is polled every second until it finds it: the newest day '
            "searchable. The full 20,000-message mailbox would spend most of an hour in the model (see the "
            "embed section) and is not backfilled here. New mail: one message with a unique word "
            "APPENDed to `quiet`'s INBOX while the sensor keeps ticking, then "
            '`mail_pipeline.indexing.search.search(word, mode="text")` polled every 0.25 s until it finds it; the '
            "sensor's run request time comes from the run record."
        ),
    )
)
