"""The CLI's side of the search service: find it on loopback, ask it, or say it is not there.

A one-shot `mail-pipeline search` spends seconds loading torch and the model; a running service
answers in milliseconds. It is used only when it serves the same data directory.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from mail_pipeline.service.reader import NothingIndexedError, RequestError

# Loopback answers in about a millisecond; a service still loading its model does not answer
# in this time, and the CLI then searches by itself rather than wait.
PROBE_TIMEOUT_S = 0.3
SEARCH_TIMEOUT_S = 120.0
# The access token the CLI and the MCP stdio server send to a service that needs one.
TOKEN_VARIABLE = "MAIL_PIPELINE_TOKEN"
SERVICE_NAME = (
    "mail-pipeline search"  # what /api/health answers: not some other program on the port
)


class ServiceFailed(RuntimeError):
    """The service was found but did not answer a search (it stopped, or failed inside)."""


def service_url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}"


def _get(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """The status and the JSON object of a GET; ValueError when the body is not one."""
    request = urllib.request.Request(url)
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            status, body = reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            status, body = error.code, json.loads(error.read() or b"{}")
    if not isinstance(body, dict):  # every answer of the service is an object
        raise ValueError(f"{url} answered a JSON {type(body).__name__}, not an object")
    return status, body


def serves(base: str, data_dir: Path, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a search service answers at `base` for this data directory."""
    try:
        status, health = _get(f"{base}/api/health", timeout)
    except (OSError, ValueError):  # refused, timed out, or something else on the port
        return False
    return (
        status == 200
        and isinstance(health, dict)
        and health.get("service") == SERVICE_NAME
        and health.get("data_dir") == str(data_dir.resolve())
    )


def search(
    base: str,
    query: str,
    *,
    mode: str,
    account: str | None,
    since: date | None,
    until: date | None,
    k: int,
    exclude_deleted: bool = False,
) -> list[dict[str, Any]]:
    """The service's hits, as `MailReader.search` gives them; its refusals raised as here."""
    answer = search_answer(
        base,
        query,
        mode=mode,
        account=account,
        since=since,
        until=until,
        k=k,
        exclude_deleted=exclude_deleted,
    )
    results: list[dict[str, Any]] = answer["results"]
    return results


def search_answer(
    base: str,
    query: str,
    *,
    mode: str,
    account: str | None,
    since: date | None,
    until: date | None,
    k: int,
    exclude_deleted: bool = False,
) -> dict[str, Any]:
    """The service's answer, as `MailReader.search_answer` gives it (hits and note); its
    refusals raised as here."""
    params = {
        "q": query,
        "mode": mode,
        "k": k,
        "account": account or "",
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
        "exclude_deleted": int(exclude_deleted),
    }
    try:
        status, payload = _get(f"{base}/api/search?{urlencode(params)}", SEARCH_TIMEOUT_S)
    except (OSError, ValueError) as error:
        raise ServiceFailed(f"the search service at {base} did not answer ({error})") from error
    if status == 400:
        raise RequestError(payload["error"])
    if status == 503 and payload.get("empty"):
        raise NothingIndexedError(payload["error"])
    if status != 200:
        raise ServiceFailed(
            f"the search service at {base} answered {status}: {payload.get('error')}"
        )
    return payload
