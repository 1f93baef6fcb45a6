"""`.env` files under the project's one rule: a variable set in the environment wins over `.env`,
and an empty value (`FERNET_KEY=`, as in .env.example) counts as unset wherever it appears."""

from __future__ import annotations

import os
import re
from pathlib import Path


def values(path: Path) -> dict[str, str]:
    """The file's non-empty values, parsed as python-dotenv (and so Dagster) parses them."""
    from dotenv import dotenv_values

    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value}


def load(path: Path) -> None:
    """Put the file's values into the environment where it has none (unset, or empty)."""
    for name, value in values(path).items():
        if not os.environ.get(name):
            os.environ[name] = value


def effective(name: str, path: Path) -> str | None:
    """The value a process sees: the environment's when non-empty, else the file's."""
    return os.environ.get(name) or values(path).get(name)


def merged_environment(path: Path) -> dict[str, str]:
    """os.environ with the file's values filled in where the environment has none: what every
    process started by `mail-pipeline run` receives, so none needs to read `.env` itself."""
    env = {key: value for key, value in os.environ.items() if value}
    return {**values(path), **env}


def _empty_line(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=\s*(''|\"\")?\s*(#.*)?$")


def fill(path: Path, name: str, value: str, comment: str) -> None:
    """Write `name=value` into the file: on its first empty `name=` line, else appended once.

    The file keeps every other line; it is created (mode 0600) when missing.
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    empty = _empty_line(name)
    at = next((n for n, line in enumerate(lines) if empty.match(line)), None)
    if at is None:
        lines += [*([""] if lines else []), f"# {comment}", f"{name}={value}"]
    else:
        lines[at] = f"{name}={value}"
    # A new file beside the old, then a rename: a crash never leaves a half-written key file.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.chmod(0o600)
    os.replace(partial, path)
