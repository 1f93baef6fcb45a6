"""`mail-pipeline repair`: damaged lake files moved aside, and what they held accounted for.

A damaged raw_messages file may be the only copy of messages the server has since deleted. Its
readable columns are salvaged to list them, the server is asked which it still has (the
partition's next run fetches those again: nothing is stored for that day any more), and the rest
are reported as lost. Other tables are rebuilt from raw_messages by the partition's next run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from mail_pipeline.settings import Settings
from mail_pipeline.storage import integrity, objects
from mail_pipeline.storage.lake import Lake, LakeReadError, read_file
from mail_pipeline.storage.objects import Location
from mail_pipeline.sync.flag_cursor import FlagCursor

if TYPE_CHECKING:
    from mail_pipeline.imap.session import ImapSession

# Small columns a damaged raw_messages file may still give up when the raw bytes do not.
SALVAGE_COLUMNS = ["folder", "uidvalidity", "uid", "internaldate", "message_id", "sha256"]
IDENTITY_COLUMNS = ["folder", "uidvalidity", "uid"]


@dataclass(frozen=True)
class Damaged:
    table: str
    account: str
    day: date
    path: Location
    error: str


@dataclass
class Repaired:
    damaged: Damaged
    moved_to: Location
    listed: list[dict[str, Any]] | None = (
        None  # the messages the file held (raw_messages), None if unreadable
    )
    on_server: int | None = None  # that day's messages the server has: the next run fetches them
    lost: list[dict[str, Any]] = field(default_factory=list)  # listed, and no longer on the server
    # Listed under a UIDVALIDITY the folder no longer has: its UIDs are void, so they cannot be matched.
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    server_error: str | None = None

    @property
    def unaccounted(self) -> bool:
        """Messages may be lost that this report cannot name."""
        raw = self.damaged.table == "raw_messages"
        return raw and (
            self.listed is None or self.server_error is not None or bool(self.unmatched)
        )


def find_damaged(lake: Lake) -> list[Damaged]:
    """Every lake file that does not read back as written (page checksums, raw messages' sha256)."""
    return [Damaged(d.table, d.account, d.day, d.path, d.error) for d in integrity.scrub(lake)]


def salvage(path: Location) -> list[dict[str, Any]] | None:
    """The messages a damaged raw_messages file lists, from whichever small columns still read."""
    for columns in (SALVAGE_COLUMNS, IDENTITY_COLUMNS):
        try:
            rows: list[dict[str, Any]] = read_file(path, columns=columns).to_pylist()
            return rows
        except LakeReadError:
            continue
    return None


def quarantine(lake: Lake, path: Location, folder: Location) -> Location:
    """Move `path` under `folder`, keeping its place in the lake's layout (never deleted)."""
    return integrity.move_aside(lake, path, folder)


def compare_with_server(session: ImapSession, wanted_folders: list[str], item: Repaired) -> None:
    """Count the day's messages on the server and list the salvaged ones it no longer has
    (matched by folder, UIDVALIDITY and UID)."""
    from mail_pipeline.imap.errors import ImapFolderError
    from mail_pipeline.imap.folders import split_folders
    from mail_pipeline.sync.plan import plan_folder

    day = item.damaged.day
    listed = item.listed or []
    synced, _missing = split_folders(session.list_folders(), wanted_folders)
    on_server: set[tuple[str, int, int]] = set()
    validity: dict[str, int] = {}
    for folder in sorted(set(synced) | {row["folder"] for row in listed}):
        try:
            plan = plan_folder(session, folder, [day], {})[day]
        except ImapFolderError:  # deleted or renamed on the server: what it held is gone from there
            continue
        validity[folder] = plan.uidvalidity
        on_server |= {(folder, plan.uidvalidity, meta.uid) for meta in plan.to_fetch}
    item.on_server = sum(1 for folder, _v, _uid in on_server if folder in synced)
    missing = [
        row for row in listed if (row["folder"], row["uidvalidity"], row["uid"]) not in on_server
    ]
    item.unmatched = [
        row
        for row in missing
        if validity.get(row["folder"], row["uidvalidity"]) != row["uidvalidity"]
    ]
    item.lost = [row for row in missing if row not in item.unmatched]


def check_server(settings: Settings, account: str, items: list[Repaired]) -> None:
    """Ask the account's server about each repaired raw_messages partition; errors are recorded."""
    from mail_pipeline import imap, logs
    from mail_pipeline.auth.tokens import credential_for
    from mail_pipeline.imap.errors import ImapError
    from mail_pipeline.storage import crypto
    from mail_pipeline.storage.accounts import AccountError

    try:
        registry = settings.registry()
        registered = registry.get(account)
        # a password or OAuth
        credential = credential_for(registered, registry, crypto.load_cipher())
        with imap.ImapSession(imap.config_for(registered, settings), credential) as session:
            for item in items:
                compare_with_server(session, list(registered.folders), item)
    except (AccountError, crypto.KeyConfigError, crypto.DecryptError, ImapError) as error:
        for item in items:
            item.server_error = logs.redact(f"{type(error).__name__}: {error}")


@dataclass
class Report:
    folder: Location  # <storage>/quarantine/<UTC time>: the moved files and report.json
    items: list[Repaired]


def repair(settings: Settings, *, ask_server: bool = True, now: datetime | None = None) -> Report:
    """Quarantine every damaged lake file under <storage>/quarantine/<UTC time>/ (the data
    directory, or the bucket's prefix: beside the lake, where a run sets its own aside) and
    account for it."""
    lake = Lake(settings.lake_dir)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    folder = settings.storage_root / "quarantine" / stamp
    repaired = []
    for damaged in find_damaged(lake):
        listed = salvage(damaged.path) if damaged.table == "raw_messages" else None
        repaired.append(Repaired(damaged, quarantine(lake, damaged.path, folder), listed))
        # The stored flags it held are gone: the next run compares every message's flags again.
        FlagCursor(lake, damaged.account).forget()
    raw = [item for item in repaired if item.damaged.table == "raw_messages"]
    for account in sorted({item.damaged.account for item in raw}):
        if ask_server:
            check_server(
                settings, account, [item for item in raw if item.damaged.account == account]
            )
        else:
            for item in raw:
                item.server_error = "--offline"
    if repaired:
        write_report(folder / "report.json", repaired)
    return Report(folder, repaired)


def write_report(path: Location, repaired: Iterable[Repaired]) -> None:
    entries = [
        {
            "table": r.damaged.table,
            "account": r.damaged.account,
            "day": r.damaged.day.isoformat(),
            "file": str(r.damaged.path),
            "moved_to": str(r.moved_to),
            "error": r.damaged.error,
            "messages_listed": None if r.listed is None else len(r.listed),
            "on_server": r.on_server,
            "lost": r.lost,
            "unmatched": r.unmatched,
            "server_error": r.server_error,
        }
        for r in repaired
    ]
    # whole, private locally (a temp file renamed), one PUT on S3
    objects.write_bytes(path, json.dumps(entries, indent=2, default=str).encode())


def render(report: Report) -> str:
    repaired = report.items
    if not repaired:
        return "no damaged lake files; nothing to repair"
    lines = [
        f"moved {len(repaired)} damaged file(s) aside, under {report.folder} (report.json lists what they held)"
    ]
    for item in repaired:
        d = item.damaged
        lines.append(f"  {d.table} {d.account} {d.day}: {d.error}")
        lines += [f"    {line}" for line in consequences(item)]
    days = sorted({(r.damaged.account, r.damaged.day) for r in repaired})
    lines.append(
        "rebuild them now, with `make run` up (the sensor re-runs a day only when it gets new mail):"
    )
    lines += [
        f"  mail-pipeline backfill --account {account} --from {day} --to {day}"
        for account, day in days
    ]
    return "\n".join(lines)


def consequences(item: Repaired) -> list[str]:
    if item.damaged.table == "sync_log":
        return ["sync history only (no mail): that day's sync_log rows are not rebuilt"]
    if item.damaged.table == "message_state":
        return [
            "flags and deleted_at of the day's changed messages: the partition's next run takes them from the "
            "server again (a message kept after leaving it gets that run's time as deleted_at)"
        ]
    if item.damaged.table != "raw_messages":
        return ["rebuilt from raw_messages by the partition's next run: nothing is lost"]
    lines = [
        f"{len(item.listed)} message(s) listed in the file"
        if item.listed is not None
        else "the file's message list is unreadable too: messages only it held cannot be named"
    ]
    if item.server_error:
        return [
            *lines,
            f"server not checked ({item.server_error}); the partition's next run fetches what the "
            "server still has, and report.json keeps the file's message list to compare",
        ]
    lines.append(
        f"{item.on_server} message(s) of that day are on the server: the partition's next run fetches them again"
    )
    if item.listed is not None:
        lines.append(
            f"{len(item.lost)} message(s) are no longer on the server and cannot be recovered"
            + (":" if item.lost else "")
        )
        lines += [f"  {describe(row)}" for row in item.lost]
    if item.unmatched:
        lines.append(
            f"{len(item.unmatched)} message(s) were stored under a UIDVALIDITY their folder no longer has, so "
            "they cannot be matched; the next run fetches what the folder holds now:"
        )
        lines += [f"  {describe(row)}" for row in item.unmatched]
    return lines


def describe(row: dict[str, Any]) -> str:
    return (
        f"{row['folder']} UIDVALIDITY {row['uidvalidity']} UID {row['uid']}"
        + (f" <{row['message_id']}>" if row.get("message_id") else "")
        + (f" {row['internaldate']:%Y-%m-%d %H:%M}Z" if row.get("internaldate") else "")
    )
