"""The environment the tests run in is the lock, exactly: every locked distribution at its locked
version, nothing else installed, and the product's lock a subset of the dev lock."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)
# The project itself (installed with --no-deps) and the installer the venv was made with.
NOT_LOCKED = {"mail-pipeline", "pip"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    return {canonical(name): version for name, version in PIN.findall((ROOT / lock).read_text())}


def test_every_locked_line_is_pinned_with_hashes():
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        entries = re.findall(r"^[A-Za-z0-9].*?(?=^[A-Za-z0-9]|\Z)", text, re.MULTILINE | re.DOTALL)
        assert len(entries) == len(pins(lock)) > 50, lock
        for entry in entries:
            assert "==" in entry.splitlines()[0] and "--hash=sha256:" in entry, entry.splitlines()[
                0
            ]


def test_the_product_lock_agrees_with_the_dev_lock():
    product, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in product} == product


def test_the_installed_environment_is_the_dev_lock():
    if not Path(metadata.distribution("mail_pipeline").locate_file("")).is_relative_to(
        ROOT / ".venv"
    ):
        pytest.skip("not running in the checkout's .venv (make install)")
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    locked = pins("requirements-dev.lock")
    assert {name: installed.get(name) for name in locked} == locked
    assert set(installed) - set(locked) - NOT_LOCKED == set()
