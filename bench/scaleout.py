"""scaleout: an embedding-heavy backfill through the daemon with steps on Celery workers
(`mail-pipeline worker`) and the lake and vectors on S3 (SeaweedFS), with one worker pinned to one
core against two pinned to a core each; the same backfill with the lake on the local disk; and the
no-op sensor tick with the account's state on S3 beside the local one.

Every case starts from nothing of its own: a fresh instance database, a fresh storage prefix or
data directory (LanceDB reuses vectors by chunk text, so a store that had embedded the mail once
would embed nothing the second time), fresh workers, then the same two accounts and days."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bench.backfill import keys, stack_environment
from bench.daemon import Stack
from bench.mailbox import SCALEOUT_CASES, Workbench, environment, window_days
from bench.sections import Figure, Goal, Section, register
from bench.sensor import TICKS, Ticker, add_account, register_account
from mail_pipeline.stages import STAGES
from mail_pipeline.storage.crypto import KEY_VARIABLE
from mail_pipeline_tests.celery_pool import (
    Worker,
    postgres_instance_yaml,
    step_workers,
)
from mail_pipeline_tests.servers import Postgres, Redis, SeaweedFS, free_port

ACCOUNTS = ("frank", "grace")  # Dovecot users; each the account of the same name
CORES = ("0", "1")  # one per worker: `taskset -c`


TICK_VARIABLES = (KEY_VARIABLE, "MAIL_PIPELINE_TODAY", "MAIL_PIPELINE_RETENTION_DAYS")


@dataclass(frozen=True)
class Servers:
    seaweedfs: SeaweedFS
    redis: Redis
    postgres: Postgres
    registry_url: str  # MAIL_PIPELINE_DATABASE_URL: the accounts, shared by every case


@dataclass(frozen=True)
class Case:
    """One timed backfill: `wall` from the launch until every stage holds every partition, `span`
    from the first run's process start to the last run's end (the daemon's pickup left out)."""

    wall: float
    span: float
    step_seconds: dict[str, float]  # per stage, summed over the runs
    by_worker: dict[str, int]  # steps each worker executed


@contextmanager
def servers(bench: Workbench) -> Iterator[Servers]:
    """SeaweedFS, Redis and PostgreSQL of the harness, each in its own scratch directory."""
    with ExitStack() as stack:
        started = []
        for name, kind in (("seaweedfs", SeaweedFS), ("redis", Redis), ("postgres", Postgres)):
            server = kind(bench.scratch_dir(f"scaleout-{name}")).start()
            stack.callback(server.stop)
            started.append(server)
        seaweedfs, redis, postgres = started
        url = f"postgresql://postgres@127.0.0.1:{postgres.port}/"
        yield Servers(seaweedfs, redis, postgres, url + postgres.create_database("mp_registry"))


def base_environment(bench: Workbench, services: Servers) -> dict[str, str]:
    """What the daemon, the runs and the workers of every case share: the key, the clock, the
    Celery executor and its broker, the registry in PostgreSQL, the model cache; no search
    service to hand embedding to (each worker embeds with its own model)."""
    return {
        **stack_environment(bench, bench.scratch / "unused-data"),
        "MAIL_PIPELINE_EXECUTOR": "celery",
        "MAIL_PIPELINE_BROKER_URL": services.redis.url,
        "MAIL_PIPELINE_DATABASE_URL": services.registry_url,
        "MAIL_PIPELINE_SEARCH_PORT": str(free_port()),
        # One model cache for every worker of every case (each has a HOME of its own): the
        # backend choice and the OpenVINO conversion are made once (prime_model_cache).
        "MAIL_PIPELINE_MODEL_CACHE_DIR": str(bench.scratch_dir("scaleout-model-cache")),
    }


def register_accounts(bench: Workbench, services: Servers) -> None:
    """ACCOUNTS in the PostgreSQL registry, paused (the mail is the backfills'), each with a
    mailbox of its own seed: the same mail in both would be embedded once and reused from the
    cache by the other account's run whenever the two runs' embedding steps do not overlap."""
    from mail_pipeline.storage.accounts import open_registry

    registry = open_registry("", services.registry_url)
    for i, user in enumerate(ACCOUNTS):
        bench.mailbox(user, bench.scaleout_n, seed=bench.seed + 1 + i)
        add_account(registry, bench.dovecot, user, user)
        registry.set_active(user, False)


def prime_model_cache(env: dict[str, str]) -> None:
    """The backend choice (measured, keyed by the CPU threads a process may use) and the OpenVINO
    conversion made once, in a process pinned to one core like every worker, into the model cache
    they share: no case's first model load pays for them."""
    code = (
        "from mail_pipeline.settings import Settings\n"
        "from mail_pipeline.indexing.embedder import shared_embedder\n"
        "shared_embedder(*Settings().embedder_config).encode(['warm'])\n"
    )
    subprocess.run(
        ["taskset", "-c", CORES[0], sys.executable, "-c", code],
        env={**os.environ, **env},
        check=True,
        timeout=900,
    )


def timed_days(bench: Workbench) -> list[date]:
    """The days each account's timed backfill covers: the window's last `--scaleout-days`."""
    return window_days()[-bench.scaleout_days :]


def storage_environment(services: Servers, url: str | None) -> dict[str, str]:
    """MAIL_PIPELINE_STORAGE_URL and the AWS variables for `url` on SeaweedFS; nothing for local."""
    if url is None:
        return {}
    return {"MAIL_PIPELINE_STORAGE_URL": url, **services.seaweedfs.environment()}


def run_case(
    bench: Workbench, services: Servers, base: dict[str, str], name: str, on_s3: bool, workers: int
) -> Case:
    """`dagster dev` on a fresh instance, `workers` pinned workers, then the timed backfill of
    both accounts (each worker's one model load included)."""
    data_dir = bench.scratch_dir(f"scaleout-{name}")
    url = f"s3://{services.seaweedfs.bucket}/{name}" if on_s3 else None
    env = {**base, "MAIL_PIPELINE_DATA_DIR": str(data_dir), **storage_environment(services, url)}
    # The bench process's own Settings (the backfill CLI's window and clock) read the same.
    with environment(**env):
        return timed_case(bench, services, env, data_dir, name, on_s3, workers)


def timed_case(
    bench: Workbench,
    services: Servers,
    env: dict[str, str],
    data_dir: Path,
    name: str,
    on_s3: bool,
    workers: int,
) -> Case:
    """run_case's work, in its environment."""
    instance_yaml = postgres_instance_yaml(services.postgres, data_dir.resolve())
    stack = Stack(data_dir, env, instance_yaml)
    pool = [
        Worker(
            f"{name}-w{i + 1}",
            data_dir / f"worker-{i + 1}",
            {"PATH": os.environ["PATH"], **env},
            instance_yaml,
            cpus=CORES[i],
            # Without S3 the workers share the daemon's data directory (one host here).
            data_dir=None if on_s3 else data_dir,
        )
        for i in range(workers)
    ]
    try:
        for worker in pool:
            worker.start()
        stack.start()
        stack.instance.add_dynamic_partitions("accounts", list(ACCOUNTS))
        days = timed_days(bench)
        started = time.perf_counter()
        backfill_id = stack.backfill(list(ACCOUNTS), days[0], days[-1])
        stack.wait_materialized(keys_of(days), 3600, f"{name}: the timed backfill")
        wall = time.perf_counter() - started
        runs = stack.backfill_runs([backfill_id])
        steps = [stack.step_seconds(r.run_id) for r in runs]
        by_worker = step_workers(stack.instance, [r.run_id for r in runs])
    except Exception:
        print(f"dagster dev log, last lines:\n{stack.log_tail()}", flush=True)
        for worker in pool:
            print(f"{worker.name} log, last lines:\n{worker.log.read_text()[-2000:]}", flush=True)
        raise
    finally:
        stack.stop()
        for worker in pool:
            worker.stop()
    case = Case(
        wall=wall,
        span=max(r.ended for r in runs) - min(r.launched for r in runs),
        step_seconds={stage: sum(s.get(stage, 0.0) for s in steps) for stage in STAGES},
        by_worker={worker: len(executed) for worker, executed in by_worker.items()},
    )
    print(
        f"  {name}: {case.span:.1f} s first run start to last run end ({case.wall:.1f} s from the "
        f"launch); steps: "
        + ", ".join(f"{stage} {s:.1f} s" for stage, s in case.step_seconds.items())
        + f"; steps per worker: {case.by_worker}",
        flush=True,
    )
    return case


def keys_of(days) -> set[str]:
    return {key for user in ACCOUNTS for key in keys(user, days)}


def noop_ticks(bench: Workbench, services: Servers, s3_url: str, local_dir: Path) -> dict:
    """TICKS no-op ticks of one account whose lake is on S3 (`s3_url`) and of the same account
    whose lake is in `local_dir`, alternating; each after a first tick that brings its cursor up
    to date. The registry is a file in a data directory of each (the ticks read no PostgreSQL)."""
    from dagster import DagsterInstance

    user = ACCOUNTS[0]
    s3_dir = bench.scratch_dir("scaleout-sensor-s3")
    for data_dir in (s3_dir, local_dir):
        register_account(data_dir, bench.dovecot, user, user)
    where = {"s3": storage_environment(services, s3_url), "local": {}}
    ticks: dict[str, list[float]] = {"s3": [], "local": []}
    with DagsterInstance.ephemeral() as on_s3, DagsterInstance.ephemeral() as local:
        with environment(**where["s3"]):
            tickers = {"s3": Ticker(on_s3, s3_dir)}
        tickers["local"] = Ticker(local, local_dir)
        for name, ticker in tickers.items():
            with environment(**where[name]):
                ticker.tick()  # the cursor of a new account: every day not yet stored
        for i in range(TICKS):
            for name in ("s3", "local") if i % 2 == 0 else ("local", "s3"):
                with environment(**where[name]):
                    ms, result = tickers[name].tick()
                if result.run_requests or "no new mail" not in (
                    result.skip_reason.skip_message or ""
                ):
                    raise RuntimeError(f"a tick of the up-to-date account ({name}) did not skip")
                ticks[name].append(ms)
    figures = {f"scaleout_noop_tick_ms_{n}": statistics.median(v) for n, v in ticks.items()}
    figures["scaleout_noop_tick_s3_vs_local"] = (
        figures["scaleout_noop_tick_ms_s3"] / figures["scaleout_noop_tick_ms_local"]
    )
    print(
        f"  no-op tick, median of {TICKS}: state on S3 {figures['scaleout_noop_tick_ms_s3']:.1f} ms, "
        f"local {figures['scaleout_noop_tick_ms_local']:.1f} ms",
        flush=True,
    )
    return figures


def run(bench: Workbench) -> dict[str, float]:
    if (os.cpu_count() or 1) < len(CORES):
        raise RuntimeError(f"the scaleout section pins workers to cores {CORES}: too few cores")
    cases: dict[str, list[Case]] = {label: [] for label in bench.scaleout_cases}
    figures: dict[str, float] = {}
    with servers(bench) as services:
        base = base_environment(bench, services)
        with environment(**base):
            register_accounts(bench, services)
        prime_model_cache(base)
        for i in range(bench.repeat):  # alternating: the other order on odd rounds
            for label in list(cases) if i % 2 == 0 else reversed(list(cases)):
                name = f"{label.replace('_', '-')}-{i + 1}"
                on_s3, workers = SCALEOUT_CASES[label]
                cases[label].append(run_case(bench, services, base, name, on_s3, workers))
        if {"2workers", "local_2workers"} <= set(cases):
            local_dir = bench.scratch / f"scaleout-local-2workers-{bench.repeat}"
            s3_url = f"s3://{services.seaweedfs.bucket}/2workers-{bench.repeat}"
            # The ticks' accounts are in a registry file: the key and the clock, not the pool's.
            with environment(**{k: v for k, v in base.items() if k in TICK_VARIABLES}):
                figures = noop_ticks(bench, services, s3_url, local_dir)
    best = {label: min(runs, key=lambda c: c.span) for label, runs in cases.items()}
    figures |= {
        "scaleout_accounts": len(ACCOUNTS),
        "scaleout_days": bench.scaleout_days,
        "scaleout_mailbox_n": bench.scaleout_n,
    }
    if one := best.get("1worker"):
        spent = sum(one.step_seconds.values())
        figures |= {
            "scaleout_1worker_s": one.span,
            "scaleout_1worker_wall_s": one.wall,
            "scaleout_1worker_embedding_share": one.step_seconds["email_embeddings"] / spent,
        }
    if two := best.get("2workers"):
        figures |= {
            "scaleout_2workers_s": two.span,
            "scaleout_2workers_wall_s": two.wall,
            # 0 when one worker ran nothing.
            "scaleout_2workers_fewest_steps": min(two.by_worker.values())
            if len(two.by_worker) == 2
            else 0,
        }
    if local := best.get("local_2workers"):
        figures["scaleout_local_2workers_s"] = local.span
    if one and two:
        figures["scaleout_2workers_vs_1"] = one.span / two.span
    if two and local:
        figures["s3_vs_local_backfill"] = two.span / local.span
    return figures


register(
    Section(
        name="scaleout",
        title="Scale-out: Celery workers on S3, one core per worker; S3 against local disk",
        run=run,
        figures=(
            Figure("scaleout_accounts", "accounts backfilled at once"),
            Figure("scaleout_days", "days per account (the window's last)"),
            Figure("scaleout_mailbox_n", "messages per account over the 30-day window"),
            Figure(
                "scaleout_1worker_s", "S3, 1 worker (core 0): first run start to last end", "s", 1
            ),
            Figure(
                "scaleout_2workers_s",
                "S3, 2 workers (cores 0, 1): first run start to last end",
                "s",
                1,
            ),
            Figure("scaleout_1worker_wall_s", "S3, 1 worker: launch to every partition", "s", 1),
            Figure("scaleout_2workers_wall_s", "S3, 2 workers: launch to every partition", "s", 1),
            Figure(
                "scaleout_1worker_embedding_share",
                "1 worker: `email_embeddings` share of the summed step time",
                "",
                2,
            ),
            Figure("scaleout_2workers_fewest_steps", "2 workers: steps run by the less busy one"),
            Figure("scaleout_2workers_vs_1", "1 worker / 2 workers (time)", "×", 2),
            Figure(
                "scaleout_local_2workers_s",
                "local disk, 2 workers: first run start to last end",
                "s",
                1,
            ),
            Figure("s3_vs_local_backfill", "S3 / local disk, 2 workers (time)", "×", 2),
            Figure("scaleout_noop_tick_ms_s3", "no-op sensor tick, lake on S3, median", "ms", 1),
            Figure("scaleout_noop_tick_ms_local", "no-op sensor tick, local lake, median", "ms", 1),
            Figure("scaleout_noop_tick_s3_vs_local", "no-op tick S3 / local", "×", 2),
        ),
        goals=(
            Goal(
                "scaleout_2workers_vs_1", ">=", 1.7, "2 workers ≥ 1.7 × as fast as 1 (a core each)"
            ),
            Goal("s3_vs_local_backfill", "<=", 1.3, "backfill on S3 ≤ 1.3 × the local disk"),
        ),
        method=(
            "Two accounts (`frank`, `grace`), each a synthetic mailbox of `--scaleout-n` messages over "
            "the bench window with a seed of its own (the same mail in both would be embedded once: "
            "LanceDB reuses vectors by chunk text), on the bench's Dovecot over TLS, registered in "
            "PostgreSQL (`MAIL_PIPELINE_DATABASE_URL`) and paused; the harness's SeaweedFS "
            "(`weed server -s3`), Redis and PostgreSQL. Three cases, each from nothing of its own: "
            "`dagster dev` on a fresh PostgreSQL instance database with `MAIL_PIPELINE_EXECUTOR=celery`, "
            "a fresh S3 prefix (or, for the local case, a fresh data directory that the workers share), "
            "and fresh `mail-pipeline worker` processes (concurrency 1), each in its own working "
            "directory and HOME, pinned with `taskset -c 0` (and `-c 1` for the second); the daemon, "
            "the webserver, the code server and the runs' own processes are not pinned; one model cache "
            "directory (`MAIL_PIPELINE_MODEL_CACHE_DIR`) serves every worker, so the backend choice "
            "and the OpenVINO conversion are made once before the cases, in a process pinned to one "
            "core (the choice is keyed by the threads a process may use). Each worker's one model "
            "load (from that cache) is counted in the time: both cases pay one, in parallel with "
            "two workers. The timed backfill is one `mail-pipeline backfill` of both "
            "accounts over the window's last `--scaleout-days` days: two runs (one per account), each "
            "raw_messages → emails → email_chunks → email_embeddings and each one's blocking check, "
            "every step a Celery task. Its "
            "time is from the first run's RUN_STARTING to the last run's end (the daemon's run-queue "
            "pickup, every 5 s, left out; the wall from the launch is shown beside it). 1 worker on "
            "S3, 2 workers on S3, 2 workers on local disk, in that order, reversed on every second "
            "`--repeat` round; the best of each is kept (`--scaleout-cases` runs some of them: a "
            "ratio, and the sensor ticks, need both of their cases). What keeps the ratio under 2: the "
            "non-embedding steps and Celery's per-step dispatch, the unpinned run processes and "
            "`dagster dev` competing with the pinned workers for the same two cores (with one worker "
            "the second core is theirs alone), and the two accounts' runs ending at different times. "
            "The sensor tick: after the cases, `bench.sensor.Ticker` on `frank` with the lake of the "
            "last 2-worker S3 case (`MAIL_PIPELINE_STORAGE_URL` on SeaweedFS) and with the last local "
            "case's data directory, a first tick each to bring the cursor up to date, then 20 no-op "
            "ticks each, alternating; the median."
        ),
    )
)
