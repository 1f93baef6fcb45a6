"""raw_messages: every message of the synced folders, as RFC 822 bytes, per account x UTC day."""

from datetime import date
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MultiPartitionsDefinition,
    asset,
)

from mail_pipeline.defs.materialize import materialize_stage
from mail_pipeline.defs.resources import ImapResource, LakeResource
from mail_pipeline.stages.ingest import ingest
from mail_pipeline.stages.outcome import PartitionOutcome


def build_raw_messages(partitions: MultiPartitionsDefinition) -> AssetsDefinition:
    """The raw_messages asset over `partitions`."""

    @asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="mail",
        kinds={"imap", "parquet"},
    )
    def raw_messages(
        context: AssetExecutionContext, lake: LakeResource, imap: ImapResource
    ) -> MaterializeResult[Any]:
        """Raw RFC 822 messages of the synced folders whose INTERNALDATE falls on the UTC day."""
        lake.ensure_catalog()

        def sync(slug: str, days: list[date]) -> list[PartitionOutcome]:
            account = imap.account(slug)
            return ingest(
                slug,
                list(account.folders),
                days,
                open_session=lambda: imap.session(account),
                lake=lake.lake,
                run_id=context.run_id,
                limits=imap.limits,
                on_server_delete=account.on_server_delete,
            )

        return materialize_stage(context, lake, sync)

    return raw_messages
