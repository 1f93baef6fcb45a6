"""Which folders an account syncs: the names given, or every selectable folder but the special ones."""

from __future__ import annotations

from collections.abc import Sequence

from mail_pipeline.imap.errors import ImapFolderError
from mail_pipeline.imap.records import Folder

SKIPPED_USES = {"\\Trash", "\\Junk", "\\Drafts"}
# Every special-use attribute of RFC 6154 2: a server that marks any folder with one uses them.
SPECIAL_USES = {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
# The names servers without SPECIAL-USE give those folders (Dovecot, Courier, Cyrus, Exchange,
# Apple Mail, Thunderbird defaults), compared without case.
SKIPPED_NAMES = {
    "trash",
    "deleted items",
    "deleted messages",
    "junk",
    "junk e-mail",
    "junk email",
    "spam",
    "bulk mail",
    "drafts",
}


def selectable(available: Sequence[Folder]) -> dict[str, Folder]:
    return {
        f.name: f
        for f in available
        if "\\Noselect" not in f.flags and "\\NonExistent" not in f.flags
    }


def is_special(folder: Folder, by_flags: bool) -> bool:
    """Trash, Junk or Drafts: by SPECIAL-USE flag, or else by a well-known name at the top level or
    under INBOX in the server's hierarchy delimiter (`INBOX.Trash`, Courier and Cyrus; `INBOX/Spam`)."""
    if by_flags:
        return bool(SKIPPED_USES & set(folder.flags))
    parts = folder.name.split(folder.delimiter) if folder.delimiter else [folder.name]
    at_top = len(parts) == 1 or (len(parts) == 2 and parts[0].upper() == "INBOX")
    return at_top and parts[-1].casefold() in SKIPPED_NAMES


def split_folders(
    available: Sequence[Folder], wanted: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(the folder names to sync, the wanted ones the server does not have): `wanted` as given,
    or for `("*",)` every selectable folder except Trash, Junk and Drafts, known by their
    SPECIAL-USE flags (RFC 6154) or, on a server that sets none, by their names."""
    folders = selectable(available)
    if tuple(wanted) == ("*",):
        by_flags = any(SPECIAL_USES & set(f.flags) for f in available)
        return sorted(name for name, f in folders.items() if not is_special(f, by_flags)), []
    return [name for name in wanted if name in folders], [
        name for name in wanted if name not in folders
    ]


def sync_folders(available: Sequence[Folder], wanted: Sequence[str]) -> list[str]:
    """The folder names to sync (see `split_folders`); every wanted folder must exist."""
    folders, missing = split_folders(available, wanted)
    if missing:
        raise ImapFolderError(
            f"unknown folder(s) {', '.join(map(repr, missing))}; "
            f"the server has: {', '.join(sorted(selectable(available)))}"
        )
    return folders
