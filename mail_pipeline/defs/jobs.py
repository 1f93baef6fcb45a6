"""Jobs: `ingest` runs every stage of the mail group for the partitions it is given."""

from dagster import AssetSelection, define_asset_job

INGEST_SELECTION = AssetSelection.groups("mail")

ingest_job = define_asset_job(
    "ingest",
    selection=INGEST_SELECTION,
    # The code location's executor (defs/executors.py): in-process unless steps go to workers.
    description="raw_messages -> emails -> email_chunks -> email_embeddings for the given account x day partitions",
)
