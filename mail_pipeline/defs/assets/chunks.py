"""email_chunks and email_embeddings: text pieces sized for the model, and their vectors in LanceDB."""

import time
from collections import Counter

import pyarrow as pa
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, asset

from mail_pipeline.defs.assets.emails import emails
from mail_pipeline.defs.metadata import summary_metadata
from mail_pipeline.defs.partitions import locked_partitions, mail_partitions
from mail_pipeline.defs.resources import EmbedderResource, LakeResource, VectorsResource
from mail_pipeline.indexing.cache import embed_with_cache
from mail_pipeline.indexing.chunk import chunk_email
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.schemas import EMAIL_CHUNKS
from mail_pipeline.window import in_window

EMAIL_COLUMNS = ["email_id", "subject", "from_name", "from_address", "sent_at", "received_at", "search_text", "thread_id"]


def chunk_rows(email: dict, tokens, max_tokens: int) -> list[dict]:
    sender = f"{email['from_name']} <{email['from_address']}>" if email["from_name"] else email["from_address"]
    sent_at = email["sent_at"] or email["received_at"]
    pieces = chunk_email(email_id=email["email_id"], subject=email["subject"], sender=sender, sent_at=sent_at,
                         search_text=email["search_text"] or "", tokens=tokens, max_tokens=max_tokens)
    return [{
        "chunk_id": c.chunk_id, "email_id": c.email_id, "ordinal": c.ordinal, "text": c.text,
        "token_count": c.token_count, "text_sha256": c.text_sha256, "thread_id": email["thread_id"],
        "subject": email["subject"], "sender": sender, "sent_at": sent_at,
    } for c in pieces]


@asset(partitions_def=mail_partitions, backfill_policy=BackfillPolicy.single_run(), deps=[emails], group_name="mail", kinds={"parquet"})
def email_chunks(context: AssetExecutionContext, lake: LakeResource, embedder: EmbedderResource) -> MaterializeResult:
    """Chunks of each email's search text, sized with the embedding model's own tokenizer."""
    started = time.monotonic()
    store, settings, model = lake.lake, get_settings(), embedder.embedder()
    counts: Counter[str] = Counter()
    for account, days in locked_partitions(context, lake):
        for day in (d for d in days if in_window(d, settings.retention_days)):
            rows = []
            for email in store.read_partition("emails", account, day, columns=EMAIL_COLUMNS).to_pylist():
                pieces = chunk_rows(email, model.tokens, model.max_tokens)
                counts["emails"] += 1
                counts["emails_without_chunks"] += not pieces
                rows += pieces
            written = store.write_partition("email_chunks", account, day, pa.Table.from_pylist(rows, schema=EMAIL_CHUNKS))
            counts["chunks"] += written.rows
            counts["bytes"] += written.bytes
    return MaterializeResult(metadata=summary_metadata(
        rows=counts["chunks"], seconds=time.monotonic() - started,
        summary=f"{counts['chunks']} chunks from {counts['emails']} emails; "
                f"{counts['emails_without_chunks']} empty or signature-only emails produced none",
        extra={"emails": counts["emails"], "emails_without_chunks": counts["emails_without_chunks"], "bytes": counts["bytes"]},
    ))


@asset(partitions_def=mail_partitions, backfill_policy=BackfillPolicy.single_run(), deps=[email_chunks], group_name="mail", kinds={"lancedb"})
def email_embeddings(context: AssetExecutionContext, lake: LakeResource, vectors: VectorsResource,
                     embedder: EmbedderResource) -> MaterializeResult:
    """Chunk vectors in LanceDB (table email_chunks) with a full-text index; cached by chunk text."""
    started = time.monotonic()
    store, settings, model = lake.lake, get_settings(), embedder.embedder()
    counts: Counter[str] = Counter()
    for account, days in locked_partitions(context, lake):
        for day in (d for d in days if in_window(d, settings.retention_days)):
            chunks = store.read_partition("email_chunks", account, day).to_pylist()
            with vectors.writing() as vector_store:
                vecs, embedded = embed_with_cache([(c["text"], c["text_sha256"]) for c in chunks], model, vector_store)
                rows = [{**c, "account": account, "day": day, "model_id": model.model_id, "vector": v}
                        for c, v in zip(chunks, vecs)]
                counts["rows"] += vector_store.replace_partition(account, day, rows)
            counts["embedded"] += embedded
            counts["chunks"] += len(chunks)
    reused = counts["chunks"] - counts["embedded"]
    return MaterializeResult(metadata=summary_metadata(
        rows=counts["rows"], seconds=time.monotonic() - started,
        summary=f"{counts['rows']} chunk vectors stored; {counts['embedded']} embedded by the model, {reused} reused from the cache",
        extra={"chunks_embedded": counts["embedded"], "chunks_from_cache": reused, "model_id": model.model_id},
    ))
