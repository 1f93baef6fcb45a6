"""Structured logging: one event per line (JSON with MAIL_PIPELINE_LOG_FORMAT=json), with a
redaction filter that blanks known secret values and fields named like secrets."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import warnings
from datetime import UTC, datetime
from typing import Any

REDACTED = "[REDACTED]"
SECRET_FIELD = re.compile(r"pass(word)?|token|secret|fernet|(^|_)key$", re.IGNORECASE)
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Every later log line has this value replaced by [REDACTED]."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if SECRET_FIELD.search(k) else v) for k, v in fields.items()}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        for name, _value in list(vars(record).items()):
            if SECRET_FIELD.search(name) and name not in ("msg", "args"):
                setattr(record, name, REDACTED)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        event.update(redact_fields(getattr(record, "fields", {}) or {}))
        if record.exc_info:
            event["exception"] = redact(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(event, default=str)


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose() else level)
    # alembic reports every check of Dagster's instance schema at INFO.
    logging.getLogger("alembic").setLevel(logging.NOTSET if verbose() else logging.WARNING)


LEVEL_VARIABLE = "MAIL_PIPELINE_LOG_LEVEL"
# Dagster marks APIs this project relies on as beta/preview/superseded on every import; the
# warnings say nothing an operator can act on. MAIL_PIPELINE_LOG_LEVEL=debug shows them again.
LIBRARY_WARNING = r".*(is currently in (beta|preview)\b|is superseded\b)"


def verbose() -> bool:
    return os.environ.get(LEVEL_VARIABLE, "info").strip().lower() == "debug"


def quiet_library_warnings() -> None:
    """Hide Dagster's beta/preview/supersession warnings in this process unless verbose."""
    if not verbose():
        warnings.filterwarnings("ignore", message=LIBRARY_WARNING)


class NoiseFilter:
    """Drops library noise from the output of the processes `mail-pipeline run` starts: Dagster's
    beta/preview/supersession warnings with the source line Python prints under each (and the
    blank line Dagster's logger adds), alembic's INFO lines about the instance's schema, and the
    DEBUG events of runs (the event stream stays at INFO)."""

    WARNING = re.compile(r"\b(BetaWarning|PreviewWarning|SupersessionWarning):")
    ALEMBIC = re.compile(r"\bINFO\b.*\[alembic[.\]]")
    # A run's DEBUG events (every step's start, output and check evaluation): about 540 lines of a
    # first start's 1,000; `--verbose` shows them.
    DEBUG = re.compile(r" - dagster - DEBUG - ")

    def __init__(self) -> None:
        self._after_warning = False

    def keep(self, line: str) -> bool:
        if self._after_warning:
            if line.startswith((" ", "\t")) or not line.strip():
                return False
            self._after_warning = False
        if self.WARNING.search(line):
            self._after_warning = True
            return False
        return not (self.ALEMBIC.search(line) or self.DEBUG.search(line))
