"""email_chunks and email_embeddings: text pieces sized for the model, and their vectors in LanceDB."""

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
from mail_pipeline.defs.resources import EmbedderResource, LakeResource, VectorsResource
from mail_pipeline.stages.chunks import chunk_day
from mail_pipeline.stages.embeddings import embed_day


def build_chunks_and_embeddings(partitions: MultiPartitionsDefinition) -> list[AssetsDefinition]:
    """The email_chunks and email_embeddings assets over `partitions`."""

    @asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=["emails"],
        group_name="mail",
        kinds={"parquet"},
    )
    def email_chunks(
        context: AssetExecutionContext, lake: LakeResource, embedder: EmbedderResource
    ) -> MaterializeResult[Any]:
        """Chunks of each email's search text, sized with the embedding model's own tokenizer."""
        model = embedder.embedder()
        return materialize_stage(
            context,
            lake,
            per_day(
                lambda account, day: chunk_day(
                    lake.lake, account, day, model.tokens, model.max_tokens, model.model_id
                )
            ),
        )

    @asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=["email_chunks"],
        group_name="mail",
        kinds={"lancedb"},
    )
    def email_embeddings(
        context: AssetExecutionContext,
        lake: LakeResource,
        vectors: VectorsResource,
        embedder: EmbedderResource,
    ) -> MaterializeResult[Any]:
        """Chunk vectors in LanceDB (table email_chunks) with a full-text index; cached by chunk text."""
        model, service = embedder.document_encoder(), embedder.service_indexer(vectors)
        # Each day is committed (searchable) as soon as it is embedded: in a backfill, today's mail
        # first. The stages before keep oldest first, which threading across days relies on.
        return materialize_stage(
            context,
            lake,
            per_day(
                lambda account, day: embed_day(
                    lake.lake, account, day, model, vectors.writing, service
                )
            ),
            newest_first=True,
        )

    return [email_chunks, email_embeddings]
