"""`mail-pipeline worker`: one Celery worker of the pool that runs the steps when
MAIL_PIPELINE_EXECUTOR=celery (`dagster-celery worker start -A dagster_celery.app`, with the
same broker and Celery settings as the executor, from defs/executors.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from mail_pipeline.cli.registry import CliError, Register, Subcommands
from mail_pipeline.settings import Settings


def register(groups: Subcommands, command: Register) -> None:
    worker = groups.add_parser(
        "worker", help="run steps from the Celery queue (MAIL_PIPELINE_EXECUTOR=celery)"
    )
    worker.add_argument(
        "--name", help="the worker's name in Dagster's step events (default: a unique one)"
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="steps at once, each in its own process with its own model (default 1)",
    )
    command("worker")(cmd_worker)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> NoReturn:
    import yaml

    from mail_pipeline.cli.pipeline import write_instance_config
    from mail_pipeline.defs.executors import celery_config

    if settings.executor != "celery":
        raise CliError("mail-pipeline worker needs MAIL_PIPELINE_EXECUTOR=celery")
    if args.concurrency < 1:
        raise CliError("--concurrency must be 1 or more")
    # dagster-celery keeps its generated Celery config under the instance's home; steps get the
    # instance itself (PostgreSQL) from the run that sent them.
    home = Path(os.environ.get("DAGSTER_HOME") or write_instance_config(settings))
    config = home / "celery.yaml"
    # Variables, not values: the file names MAIL_PIPELINE_BROKER_URL, never its password.
    config.write_text(yaml.safe_dump({"execution": {"config": celery_config(settings)}}))
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
    command += ["-y", str(config), *(["-n", args.name] if args.name else [])]
    command += ["--", f"--concurrency={args.concurrency}"]
    # dagster-celery starts `celery` by name: the one beside this interpreter.
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    env = {**os.environ, "DAGSTER_HOME": str(home), "PATH": path}
    # Replaced, not wrapped: a signal to this process (Ctrl-C, a container stop) reaches the worker.
    os.execve(command[0], command, env)
