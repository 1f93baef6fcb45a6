"""The commands of `mail-pipeline`, by name ("account add"), as each module registers them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol

from mail_pipeline.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]

COMMANDS: dict[str, Command] = {}
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
