"""Mail out of the lake in standard formats (mbox, Maildir, .eml): formats.py writes, select.py reads."""
