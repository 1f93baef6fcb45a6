"""Pipeline commands of the CLI (search, status, backfill, run, doctor): registered by cli.py."""

from __future__ import annotations


def register(groups, command) -> None:
    """Add the pipeline's subcommands to the parser; each module adds its own."""
