"""Imports point one way (STYLE.md): `imap/` at the bottom, plain packages without Dagster, the
CLI at the top; the package root holds a handful of modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mail_pipeline"
PLAIN = [
    "imap",
    "sync",
    "message",
    "extract",
    "indexing",
    "storage",
    "auth",
    "stages",
    "demo",
    "service",
    "watch",
    "runtime",
]


def imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def files(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


def test_the_package_root_holds_at_most_six_modules():
    assert len(list(PACKAGE.glob("*.py"))) <= 6, sorted(p.name for p in PACKAGE.glob("*.py"))


def test_imap_depends_on_nothing_above_it():
    for path in files("imap"):
        above = {
            name
            for name in imported(path)
            if name.startswith("mail_pipeline") and not name.startswith("mail_pipeline.imap")
        }
        assert not above, (path.name, above)


@pytest.mark.parametrize("package", PLAIN)
def test_plain_packages_import_neither_dagster_nor_the_cli(package):
    for path in files(package):
        wrong = {
            name
            for name in imported(path)
            if name.split(".")[0] == "dagster" or name.startswith("mail_pipeline.cli")
        }
        assert not wrong, (f"{package}/{path.name}", wrong)


ENTRY_POINTS = {
    "__init__.py",
    "cli/main.py",
    "definitions.py",
}  # the notebook API, the CLI, the code location


def test_settings_are_read_by_the_entry_points_alone():
    readers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "get_settings" in imported(path)
        or any(name.endswith(".get_settings") for name in imported(path))
    }
    assert readers <= ENTRY_POINTS, readers - ENTRY_POINTS
