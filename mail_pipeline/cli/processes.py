"""The processes `mail-pipeline run` and `demo` start: the demo IMAP server, and Dagster's, with
their environment and their output."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mail_pipeline.settings import Settings

if TYPE_CHECKING:
    from mail_pipeline.demo.server import DemoServer
    from mail_pipeline.logs import NoiseFilter
    from mail_pipeline.storage.accounts import AccountRegistry

# glibc gives each thread that allocates under contention an arena of its own (up to 8 per core)
# and keeps their freed pages, and Arrow's own allocator (mimalloc) keeps its own: with 2 arenas
# and Arrow on glibc, whose free pages the stages hand back after each day (defs/materialize.py),
# 30 days of LanceDB writes left a process ~150 MB smaller, and no longer growing. The environment's
# values win.
MEMORY_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}


def child_environment(
    settings: Settings, home: Path, verbose: bool, env_file: Path = Path(".env")
) -> dict[str, str]:
    """The whole environment of the Dagster processes, under the one rule (the environment wins
    over .env, empty counts as unset), with paths made absolute for their working directory."""
    from mail_pipeline import envfile, logs

    env = {
        **MEMORY_ENVIRONMENT,
        **os.environ,
        **{k: v for k, v in envfile.values(env_file).items() if not os.environ.get(k)},
    }
    env.update(
        DAGSTER_HOME=str(home),
        MAIL_PIPELINE_DATA_DIR=str(settings.data_dir.resolve()),
        HF_HUB_OFFLINE="1",
    )
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p
        )
    if Path(settings.embedding_model).exists():
        env["MAIL_PIPELINE_EMBEDDING_MODEL"] = str(Path(settings.embedding_model).resolve())
    if verbose:
        env[logs.LEVEL_VARIABLE] = "debug"
    return env


def relay_output(stream: Iterable[str], noise: NoiseFilter) -> None:
    """Copy the processes' output to ours, less what `noise` drops."""
    for line in stream:
        if noise.keep(line):
            sys.stdout.write(line)
            sys.stdout.flush()


def serve_demo(registry: AccountRegistry) -> DemoServer:
    """Start the demo IMAP server, seed it and (re-)register it as the account `demo`."""
    from mail_pipeline.demo import server as demo_module

    server = demo_module.DemoServer().start()
    try:
        count = server.seed()
        demo_module.register_demo_account(registry, server.port)
    except BaseException:
        server.stop()
        raise
    print(
        f"demo mailbox: {count} messages over the last two weeks, served by pymap on 127.0.0.1:{server.port}",
        flush=True,
    )
    return server
