"""Folders that left the server. A folder missing from the run's LIST is concluded gone only once a
LIST of its own name confirms it (DESIGN.md: never a server's wording, never one answer alone);
an --all-folders account's candidates are the stored folders LIST no longer shows, which would
otherwise look like folders the account stopped syncing."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

from mail_pipeline.imap.session import ImapSession
from mail_pipeline.sync.plan import FolderOutcome

log = logging.getLogger(__name__)


def confirm(session: ImapSession, candidates: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the candidates a LIST of their own name still shows, those it confirms gone)."""
    back: list[str] = []
    gone: list[str] = []
    for folder in candidates:
        (back if session.exists(folder) else gone).append(folder)
    return back, gone


def unlisted(rows: Iterable[dict[str, Any]], listed: Collection[str]) -> list[str]:
    """The folders of stored rows still on the server (not marked deleted) that LIST did not show."""
    return sorted({row["folder"] for row in rows if row["deleted_at"] is None} - set(listed))


def outcomes(account: str, folders: list[str], policy: str) -> list[FolderOutcome]:
    """sync_log rows of the folders gone from the server: `status` shows them `missing` until
    the folder is back or the account changed; the account's other folders synced."""
    fate = (
        "its stored messages are kept, marked deleted (deleted_reason 'folder_gone')"
        if policy == "keep"
        else "its stored messages are erased (on_server_delete mirror)"
    )
    rows = []
    for folder in folders:
        error = f"folder {folder!r} does not exist on the server (deleted, or renamed to a name not synced); {fate}"
        log.warning("raw_messages: account %r: %s", account, error)
        rows.append(
            FolderOutcome(
                folder=folder,
                uidvalidity=0,
                highest_uid=0,
                status="missing",
                error=error,
                finished_at=datetime.now(UTC),
            )
        )
    return rows
