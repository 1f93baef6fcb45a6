"""Where a run's steps execute: in the run's own process (the default), or on a pool of Celery
workers (`MAIL_PIPELINE_EXECUTOR=celery`, dagster-celery's executor) that share the storage URL,
the instance's PostgreSQL and the broker.

The executor (in the run) and the workers (`mail-pipeline worker`) must agree on the broker and
the Celery settings: both take them from `celery_config`. The broker's URL, which may hold a
password, enters only by environment variable, never as a value in run config or tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import (
    Executor,
    ExecutorDefinition,
    InitExecutorContext,
    in_process_executor,
    multiple_process_executor_requirements,
)

from mail_pipeline.defs.run_launcher import hold_run_liveness
from mail_pipeline.settings import Settings, variable


def celery_config(settings: Settings) -> dict[str, Any]:
    """dagster-celery's executor config: the same block the workers start with (`-y`)."""
    broker = {"env": variable("broker_url")}
    # Redis is a result backend too; RabbitMQ sends results back over its own connection (rpc://).
    backend: object = (
        dict(broker) if settings.broker_url.get_secret_value().startswith("redis") else "rpc://"
    )
    return {
        "broker": broker,
        "backend": backend,
        "config_source": {
            # A step's message is acknowledged when the step ends, not when it starts: a worker
            # process that dies in the middle (SIGKILL, out of memory) leaves it on the broker,
            # which hands it to another worker (at once when the worker's own parent sees the
            # child die, after the visibility timeout when the whole worker is gone).
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            # One step at a time per worker process: a long embedding step never holds back
            # steps prefetched behind it while another worker idles.
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": {
                "visibility_timeout": settings.celery_visibility_timeout_s,
                # Workers look for such steps every 10 s (kombu's default: every 100 s).
                "unacked_restore_throttle": 1,
                # dagster-celery's defaults, kept: publishing retries a lost broker briefly.
                "max_retries": 3,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
        },
    }


def run_executor(settings: Settings) -> ExecutorDefinition:
    """In-process by default: one IMAP login and one model load per run. With Celery, each step
    (stage x run) is a task on the shared queue, and each worker process keeps its model loaded
    across the steps it runs (indexing/embedder.py's shared_embedder)."""
    if settings.executor != "celery":
        return in_process_executor
    from dagster_celery import celery_executor
    from dagster_celery.executor import CELERY_CONFIG

    data_dir = settings.data_dir.resolve()
    create_base = celery_executor.executor_creation_fn
    if create_base is None:  # an @executor always has one
        raise TypeError("dagster_celery.celery_executor has no executor_creation_fn")

    def create(init_context: InitExecutorContext) -> Executor:
        return _liveness_celery_executor(data_dir, create_base(init_context))

    executor = ExecutorDefinition(
        name="celery",
        config_schema=CELERY_CONFIG,
        requirements=multiple_process_executor_requirements(),
        executor_creation_fn=create,
        description=celery_executor.description,
    )
    configured: ExecutorDefinition = executor.configured(celery_config(settings))
    return configured


def _liveness_celery_executor(data_dir: Path, base: Any) -> Executor:
    """dagster-celery's executor, whose run process (the one the run launcher started, which
    waits for the workers' results) holds the run's liveness lock as an in-process run does
    (defs/run_launcher.py): run monitoring sees that process die; a worker's death is Celery's."""
    from dagster_celery.executor import CeleryExecutor

    class LivenessCeleryExecutor(CeleryExecutor):
        def execute(self, plan_context: Any, execution_plan: Any) -> Any:
            hold_run_liveness(data_dir, plan_context.dagster_run.run_id)
            return super().execute(plan_context, execution_plan)  # type: ignore[no-untyped-call]  # dagster-celery's is unannotated

    args = base.app_args()
    executor: Executor = LivenessCeleryExecutor(  # type: ignore[no-untyped-call]  # as above
        retries=base.retries,
        broker=args["broker"],
        backend=args["backend"],
        include=args["include"],
        config_source=vars(args["config_source"]),
    )
    return executor
