"""The commands of `mail-pipeline`, by name ("account add"), as each module registers them."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mail_pipeline.settings import Settings

COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {}


def command(name: str):
    def register(func):
        COMMANDS[name] = func
        return func

    return register
