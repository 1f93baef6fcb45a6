"""TLS connections share one context per CA file (`connection.tls_context`), against the real
Dovecot's TLS port: a replaced CA file is read again."""

from __future__ import annotations

import os
import shutil

import pytest

from mail_pipeline.imap.connection import ImapConfig, tls_context
from mail_pipeline.imap.session import ImapSession

pytestmark = pytest.mark.integration


def test_connections_share_the_context_of_their_ca_file_until_it_is_replaced(dovecot, tmp_path):
    ca_file = tmp_path / "ca.pem"
    shutil.copyfile(dovecot.ca_file, ca_file)
    config = ImapConfig(
        host="127.0.0.1", port=dovecot.tls_port, username="alice", ca_file=str(ca_file)
    )
    tls_context.cache_clear()
    for _ in range(2):
        with ImapSession(config, dovecot.users["alice"]) as session:
            assert "INBOX" in {folder.name for folder in session.list_folders()}
    assert tls_context.cache_info().misses == 1 and tls_context.cache_info().hits == 1

    stat = ca_file.stat()
    os.utime(ca_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with ImapSession(config, dovecot.users["alice"]) as session:
        assert "INBOX" in {folder.name for folder in session.list_folders()}
    assert tls_context.cache_info().misses == 2
