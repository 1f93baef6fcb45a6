"""What the figures were measured on: CPU, cores, memory, and the versions of what was measured."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.machine()


def ram_gib() -> float:
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    except OSError:
        return 0.0
    return int(match.group(1)) / 2**20 if match else 0.0


def cpu_vector_flags() -> str:
    """The CPU's vector and matrix extensions (AVX2, AVX-512, AMX): machines of one model differ,
    and the embedding runtimes' speed depends on them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    match = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    flags = sorted(
        f for f in (match.group(1).split() if match else []) if re.match(r"(avx|amx|fma)", f)
    )
    return " ".join(flags) or "none"


def describe() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {ram_gib():.1f} GiB RAM, {platform.system()} {platform.release()}; "
        f"CPU flags: {cpu_vector_flags()}"
    )


def _command_version(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr).strip()
        else "unknown"
    )


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    return {
        "python_version": platform.python_version(),
        "dagster_version": _package_version("dagster"),
        "imapclient_version": _package_version("imapclient"),
        "pyarrow_version": _package_version("pyarrow"),
        "dovecot_version": _command_version("dovecot", "--version"),
        "mbsync_version": _command_version("mbsync", "--version"),
    }
