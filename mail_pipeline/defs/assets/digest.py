"""daily_digest: per account and day, what needs the owner, with extracts and links to the page."""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    MultiPartitionsDefinition,
    asset,
)

from mail_pipeline.defs.partitions import split_key
from mail_pipeline.defs.resources import DigestResource, ImapResource, LakeResource
from mail_pipeline.digest.build import SECTIONS, build_digest, digest_table
from mail_pipeline.digest.render import markdown
from mail_pipeline.storage.catalog import memory_connection


def build_daily_digest(partitions: MultiPartitionsDefinition) -> AssetsDefinition:
    """The daily_digest asset over `partitions` (the mail stages' account x day)."""

    @asset(partitions_def=partitions, deps=["emails"], group_name="people", kinds={"parquet"})
    def daily_digest(
        context: AssetExecutionContext,
        lake: LakeResource,
        imap: ImapResource,
        digest: DigestResource,
    ) -> MaterializeResult[Any]:
        """Threads awaiting the owner's reply, new correspondents, flagged mail, the busiest threads and attachments of the day."""
        account, day = split_key(context.partition_key)
        registered = imap.registry.load().get(account)
        owner = [registered.email] if registered else []
        built = build_digest(memory_connection(lake.lake), account, owner, day, day)
        with lake.account_lock(account):
            written = lake.lake.write_partition("daily_digest", account, day, digest_table(built))
        lake.ensure_catalog()
        text = markdown(built, digest.base_url)
        sent_to = digest.deliver(registered, built) if registered else []
        return MaterializeResult(
            metadata={
                "dagster/row_count": written.rows,
                **{name: len(built.section(name)) for name in SECTIONS},
                "delivered_to": len(sent_to),
                "digest": MetadataValue.md(text),
            }
        )

    return daily_digest
