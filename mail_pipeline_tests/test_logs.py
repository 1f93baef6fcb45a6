"""Structured logs: one JSON event per line, secrets redacted by value and by field name; library
noise kept out unless MAIL_PIPELINE_LOG_LEVEL=debug."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mail_pipeline import logs
from mail_pipeline.storage import crypto

ROOT = Path(__file__).resolve().parents[1]


def test_json_lines_with_secrets_redacted(capsys):
    logs.configure("json")
    logs.register_secret("hunter2-very-secret")
    log = logging.getLogger("mail_pipeline.test")
    log.info(
        "login with %s failed",
        "hunter2-very-secret",
        extra={"fields": {"account": "work", "password": "pw-field-value", "api_token": "t0k"}},
    )
    try:
        raise RuntimeError("boom hunter2-very-secret")
    except RuntimeError:
        log.exception("sync failed")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    events = [json.loads(line) for line in lines]
    assert events[0]["event"] == "login with [REDACTED] failed"
    assert (
        events[0]["account"] == "work"
        and events[0]["password"] == "[REDACTED]"
        and events[0]["api_token"] == "[REDACTED]"
    )
    assert events[1]["level"] == "error" and "boom [REDACTED]" in events[1]["exception"]
    assert "hunter2-very-secret" not in "\n".join(lines) and "pw-field-value" not in "\n".join(
        lines
    )
    logs.configure("text")


def test_text_format_redacts_too(capsys):
    logs.configure("text")
    logs.register_secret("another-secret-value")
    logging.getLogger("x").warning("value=another-secret-value")
    try:
        raise ValueError("another-secret-value")
    except ValueError:
        logging.getLogger("x").exception("failed")
    err = capsys.readouterr().err
    assert "another-secret-value" not in err and "[REDACTED]" in err


# Lines as `dagster dev` printed them on this machine (colour codes dropped), and alembic's in the
# format of the alembic.ini Dagster ships.
DAGSTER_OUTPUT = """\
/venv/lib/python3.11/site-packages/click/core.py:911: SupersessionWarning: Function `dev_command` is superseded and its usage is discouraged. Use 'dg dev' instead.
  return callback(*args, **kwargs)
2026-11-30 08:16:30 +0000 - dagster - INFO - Launching Dagster services...
2026-11-30 08:16:33 +0000 - dagster - WARNING - /venv/dagster/_core/decorator_utils.py:232: BetaWarning: Parameter `backfill_policy` of function `asset` is currently in beta.
  return fn(*args, **kwargs)

2026-11-30 08:16:33 +0000 - dagster - WARNING - /venv/dagster/asset_check_decorator.py:220: PreviewWarning: Specifying a partitions_def on an AssetCheckSpec is currently in preview.
  spec = AssetCheckSpec(

INFO  [alembic.runtime.migration] Context impl SQLiteImpl.
INFO  [alembic.runtime.migration] Will assume non-transactional DDL.
2026-11-30 08:16:35 +0000 - dagster.daemon.SensorDaemon - INFO - Sensor new_mail_sensor skipped: no new mail
2026-12-07 05:21:06 +0000 - dagster - DEBUG - __ephemeral_asset_job__ - 66228ead-094d-45a7-bf77-5ab2ba0f950c - 30914 - email_embeddings_every_chunk_embedded - ASSET_CHECK_EVALUATION - Asset check 'every_chunk_embedded' on 'email_embeddings' passed.
2026-11-30 08:16:35 +0000 - dagster-webserver - INFO - Serving dagster-webserver on http://127.0.0.1:3917 in process 14290
"""


def test_noise_filter_keeps_what_an_operator_reads():
    noise = logs.NoiseFilter()
    kept = [line for line in DAGSTER_OUTPUT.splitlines(keepends=True) if noise.keep(line)]
    assert [line.split(" - ")[-1].strip() for line in kept] == [
        "Launching Dagster services...",
        "Sensor new_mail_sensor skipped: no new mail",
        "Serving dagster-webserver on http://127.0.0.1:3917 in process 14290",
    ]


@pytest.mark.parametrize(("level", "shown"), [(None, False), ("debug", True)])
def test_loading_the_definitions_is_quiet_unless_debug(tmp_path, level, shown):
    env = {
        **os.environ,
        "FERNET_KEY": crypto.generate_key(),
        "PYTHONPATH": str(ROOT),
        "PYTHONWARNINGS": "default",
    }
    env.pop(logs.LEVEL_VARIABLE, None)
    if level:
        env[logs.LEVEL_VARIABLE] = level
    out = subprocess.run(
        [sys.executable, "-c", "import mail_pipeline.definitions"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert ("BetaWarning" in out.stderr and "PreviewWarning" in out.stderr) is shown, out.stderr[
        -2000:
    ]
    if not shown:
        assert "Warning" not in out.stderr, out.stderr[-2000:]
