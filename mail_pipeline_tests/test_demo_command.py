"""`mail-pipeline demo`: the demo mailbox without Dagster (how the docker stack gets one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mail_pipeline.storage.accounts import AccountRegistry

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).with_name("mail-pipeline"))


def test_demo_serves_a_registered_mailbox_until_stopped(data_dir, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [CLI, "demo"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Ctrl-C stops it" in line:
                break
        assert any("demo mailbox: 400 messages" in line for line in lines), lines
        assert AccountRegistry(data_dir / "accounts.json").get("demo").active
        test = subprocess.run(
            [CLI, "account", "test", "demo"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert test.returncode == 0 and "OK: logged in" in test.stdout, test.stderr
        os.killpg(demo.pid, signal.SIGTERM)  # as `docker compose down` stops it
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    # the sensor stops polling it
    assert not AccountRegistry(data_dir / "accounts.json").get("demo").active


def test_demo_without_a_key_fails_before_starting_a_server(tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "FERNET_KEY"}
    env["MAIL_PIPELINE_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [CLI, "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "FERNET_KEY is not set" in done.stderr
    assert not (tmp_path / "data").exists()
