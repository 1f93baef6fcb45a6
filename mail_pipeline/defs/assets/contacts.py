"""contacts: per account, one row per correspondent over the retention window."""

from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from mail_pipeline.defs.partitions import accounts_partitions
from mail_pipeline.defs.resources import ImapResource, LakeResource
from mail_pipeline.stages.contacts import contact_rows, write_contacts
from mail_pipeline.storage.catalog import memory_connection


@asset(
    partitions_def=accounts_partitions,
    deps=["emails"],
    group_name="people",
    kinds={"parquet"},
)
def contacts(
    context: AssetExecutionContext, lake: LakeResource, imap: ImapResource
) -> MaterializeResult[Any]:
    """Who the account corresponds with: names, organisation, messages from and to them, threads, first and last seen."""
    account = context.partition_key
    registered = imap.registry.load().get(account)
    owner = [registered.email] if registered else []
    window = lake.window
    with lake.account_lock(account):
        rows = contact_rows(
            memory_connection(lake.lake), account, owner, window.cutoff(), window.today()
        )
        written = write_contacts(lake.lake, account, window.today(), rows)
    lake.ensure_catalog()
    top = sorted(rows, key=lambda row: -(row["messages_from"] + row["messages_to"]))[:10]
    return MaterializeResult(
        metadata={
            "dagster/row_count": written.rows,
            "bytes": written.bytes,
            "top_correspondents": MetadataValue.md(
                "\n".join(
                    f"- {row['address']}: {row['messages_from']} from, {row['messages_to']} to"
                    for row in top
                )
                or "none"
            ),
        }
    )
