"""Jobs: `ingest` runs every stage of the mail group for the partitions it is given."""

from dagster import AssetSelection, define_asset_job, in_process_executor

INGEST_SELECTION = AssetSelection.groups("mail")

ingest_job = define_asset_job(
    "ingest",
    selection=INGEST_SELECTION,
    # One process per run: the IMAP login, imports and the model load are paid once, not per step.
    executor_def=in_process_executor,
    description="raw_messages -> emails -> email_chunks -> email_embeddings for the given account x day partitions",
)
