"""The service's audit log: one JSON line per request, in a private, rotated file.

A line says who (the token's name), what (the route or MCP tool), which accounts the answer
touched and how many results it held; never the query text, never the token itself.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mail_pipeline.storage.permissions import PRIVATE_FILE, create_private_file, private_dir

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class _PrivateRotatingHandler(logging.handlers.RotatingFileHandler):
    """A rotating file whose every generation is 0600, whatever the process's umask."""

    def doRollover(self) -> None:
        super().doRollover()
        Path(self.baseFilename).chmod(PRIVATE_FILE)


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS):
        self.path = Path(path)
        private_dir(self.path.parent)
        if not self.path.exists():
            create_private_file(self.path)
        self._handler = _PrivateRotatingHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._lock = threading.Lock()

    def record(
        self,
        *,
        token: str | None,
        route: str,
        status: int,
        accounts: list[str],
        results: int | None,
        client: str,
    ) -> None:
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "token": token,
            "route": route,
            "status": status,
            "accounts": accounts,
            "results": results,
            "client": client,
        }
        record = logging.LogRecord("mail_pipeline.audit", logging.INFO, "", 0, "%s", None, None)
        record.msg = json.dumps(line)
        with self._lock:
            self._handler.emit(record)

    def close(self) -> None:
        self._handler.close()


def touched(payload: Any) -> tuple[list[str], int | None]:
    """The accounts an answer holds mail of, and its number of results (None for no list)."""
    if isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict):
        items = next(
            (payload[key] for key in ("results", "emails") if isinstance(payload.get(key), list)),
            [payload] if "account" in payload else [],
        )
    else:
        return [], None
    accounts = {item["account"] for item in items if isinstance(item, dict) and item.get("account")}
    if isinstance(payload, dict) and payload.get("account"):
        accounts.add(payload["account"])
    return sorted(accounts), len(items)
