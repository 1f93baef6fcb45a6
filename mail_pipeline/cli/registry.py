"""The commands of `mail-pipeline`, by name ("account add"), as each module registers them, and
what they share: the one-line error, secrets read from the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, Protocol

from mail_pipeline import logs
from mail_pipeline.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]

COMMANDS: dict[str, Command] = {}


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def secret_from_env(variable: str) -> str:
    """A password or secret named by a `--…-env VAR` flag (never a flag's own value: argv is
    visible to every user of the machine). Registered for redaction at once."""
    if variable not in os.environ:
        raise CliError(f"environment variable {variable} is not set")
    logs.register_secret(os.environ[variable])
    return os.environ[variable]


# `command` itself, as the command modules' register() take it.
Register = Callable[[str], Callable[[Command], Command]]


class Subcommands(Protocol):
    """What `ArgumentParser.add_subparsers()` returns, as the command modules use it."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def command(name: str) -> Callable[[Command], Command]:
    def register(func: Command) -> Command:
        COMMANDS[name] = func
        return func

    return register
