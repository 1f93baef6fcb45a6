"""The `mail-pipeline` command line: the parser (`main`), one module per command group, and
what only the commands use (sign-in, backfill, repair, doctor, preflight checks, processes)."""

from mail_pipeline.cli.main import main

__all__ = ["main"]
