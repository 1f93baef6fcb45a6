"""emails: one parsed, clean record per distinct message of the account that day."""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MultiPartitionsDefinition,
    asset,
)

from mail_pipeline.defs.materialize import materialize_stage, per_day
from mail_pipeline.defs.resources import AttachmentsResource, LakeResource
from mail_pipeline.stages.emails import parse_day


def build_emails(partitions: MultiPartitionsDefinition) -> AssetsDefinition:
    """The emails asset over `partitions`."""

    @asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=["raw_messages"],
        group_name="mail",
        kinds={"parquet"},
    )
    def emails(
        context: AssetExecutionContext, lake: LakeResource, attachments: AttachmentsResource
    ) -> MaterializeResult[Any]:
        """Parsed emails: one row per distinct message, with clean text, threads, attachments and their text."""
        with attachments.pool() as pool:
            result = materialize_stage(
                context,
                lake,
                per_day(lambda account, day: parse_day(lake.lake, account, day, pool)),
            )
        lake.ensure_catalog()
        return result

    return emails
