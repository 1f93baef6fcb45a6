"""The IMAP protocol: sessions, FETCH response parsing, error classes and folder selection."""

from mail_pipeline.imap.connection import ImapConfig, config_for
from mail_pipeline.imap.folders import selectable, split_folders, sync_folders
from mail_pipeline.imap.pipelining import FETCH_ITEMS
from mail_pipeline.imap.records import FetchedMessage, Folder, FolderStatus, MessageMeta
from mail_pipeline.imap.session import ImapSession

__all__ = [
    "FETCH_ITEMS",
    "FetchedMessage",
    "Folder",
    "FolderStatus",
    "ImapConfig",
    "ImapSession",
    "MessageMeta",
    "config_for",
    "selectable",
    "split_folders",
    "sync_folders",
]
