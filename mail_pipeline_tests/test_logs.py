"""Structured logs: one JSON event per line, secrets redacted by value and by field name."""

from __future__ import annotations

import json
import logging

from mail_pipeline import logs


def test_json_lines_with_secrets_redacted(capsys):
    logs.configure("json")
    logs.register_secret("hunter2-very-secret")
    log = logging.getLogger("mail_pipeline.test")
    log.info("login with %s failed", "hunter2-very-secret", extra={"fields": {"account": "work", "password": "pw-field-value", "api_token": "t0k"}})
    try:
        raise RuntimeError("boom hunter2-very-secret")
    except RuntimeError:
        log.exception("sync failed")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    events = [json.loads(line) for line in lines]
    assert events[0]["event"] == "login with [REDACTED] failed"
    assert events[0]["account"] == "work" and events[0]["password"] == "[REDACTED]" and events[0]["api_token"] == "[REDACTED]"
    assert events[1]["level"] == "error" and "boom [REDACTED]" in events[1]["exception"]
    assert "hunter2-very-secret" not in "\n".join(lines) and "pw-field-value" not in "\n".join(lines)
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
