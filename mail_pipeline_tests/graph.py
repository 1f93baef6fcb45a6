"""The asset graph as the tests' code location holds it: built for a window loaded on 2026-10-12.

The day partitions start where the retention window started when the definitions were built
(defs/partitions.py). The tests pin their clocks (MAIL_PIPELINE_TODAY) to days back to
2026-10-06, so their graph is the one a code location loaded on 2026-10-12 would hold, whatever
the date."""

from __future__ import annotations

from datetime import date

from mail_pipeline.defs.assets import build_mail_assets
from mail_pipeline.defs.checks import build_checks
from mail_pipeline.defs.partitions import mail_partitions_for
from mail_pipeline.window import Window

LOADED_ON = Window(retention_days=30, pinned_today=date(2026, 10, 12))

mail_partitions = mail_partitions_for(LOADED_ON)
raw_messages, emails, email_chunks, email_embeddings = build_mail_assets(mail_partitions)
CHECKS = build_checks(mail_partitions)
