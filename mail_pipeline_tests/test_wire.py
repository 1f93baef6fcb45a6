"""imap/wire.py's own encoding of a mailbox argument: what imapclient sends for the same name."""

from __future__ import annotations

import pytest

from mail_pipeline.imap import wire


class Client:
    folder_encode = True


@pytest.mark.parametrize(
    ("folder", "sent"),
    [
        ("INBOX", b'"INBOX"'),
        ("Entw\u00fcrfe", b'"Entw&APw-rfe"'),  # modified UTF-7, RFC 3501 5.1.3
        ("&amp", b'"&-amp"'),
        ('say "hi"', b'"say \\"hi\\""'),
        ("back\\slash", b'"back\\\\slash"'),
    ],
)
def test_a_mailbox_is_sent_quoted_in_modified_utf7(folder, sent):
    assert wire.mailbox(Client(), folder) == sent
