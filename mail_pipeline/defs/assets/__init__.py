"""The stages' assets, built for the partitions an entry point's settings give."""

from dagster import AssetsDefinition, MultiPartitionsDefinition

from mail_pipeline.defs.assets.chunks import build_chunks_and_embeddings
from mail_pipeline.defs.assets.emails import build_emails
from mail_pipeline.defs.assets.raw_messages import build_raw_messages


def build_mail_assets(partitions: MultiPartitionsDefinition) -> list[AssetsDefinition]:
    """raw_messages, emails, email_chunks and email_embeddings, in that order."""
    return [
        build_raw_messages(partitions),
        build_emails(partitions),
        *build_chunks_and_embeddings(partitions),
    ]
