"""Which folders an account syncs: the names given, or every selectable folder but the special ones."""

from __future__ import annotations

from collections.abc import Sequence

from mail_pipeline.imap.errors import ImapFolderError
from mail_pipeline.imap.session import Folder


def selectable(available: Sequence[Folder]) -> dict[str, Folder]:
    return {f.name: f for f in available if "\\Noselect" not in f.flags and "\\NonExistent" not in f.flags}


def split_folders(available: Sequence[Folder], wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the folder names to sync, the wanted ones the server does not have): `wanted` as given,
    or for `("*",)` every selectable folder except Trash, Junk and Drafts by their SPECIAL-USE
    flags (RFC 6154)."""
    folders = selectable(available)
    if tuple(wanted) == ("*",):
        skip = {"\\Trash", "\\Junk", "\\Drafts"}
        return sorted(name for name, f in folders.items() if not skip & set(f.flags)), []
    return [name for name in wanted if name in folders], [name for name in wanted if name not in folders]


def sync_folders(available: Sequence[Folder], wanted: Sequence[str]) -> list[str]:
    """The folder names to sync (see `split_folders`); every wanted folder must exist."""
    folders, missing = split_folders(available, wanted)
    if missing:
        raise ImapFolderError(f"unknown folder(s) {', '.join(map(repr, missing))}; "
                              f"the server has: {', '.join(sorted(selectable(available)))}")
    return folders
