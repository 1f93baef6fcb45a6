"""Asset checks: the contracts between stages, per account x day partition."""

from collections.abc import Callable, Iterator
from datetime import UTC, date

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MultiPartitionsDefinition,
    Output,
    asset_check,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from mail_pipeline.defs.partitions import split_key
from mail_pipeline.defs.resources import EmbedderResource, LakeResource, VectorsResource
from mail_pipeline.indexing.remote import ServiceIndexer
from mail_pipeline.storage.lake import Lake


def per_partition(
    context: AssetCheckExecutionContext, problems: Callable[[str, date], list[str]]
) -> Iterator[AssetCheckResult | AssetCheckEvaluation | Output[None]]:
    """Run `problems(account, day)` over the check's partitions; pass when none are found.

    A single-partition run records its result against that partition. A run over several
    partitions (a single-run backfill) records one result per partition, each against its own;
    the check's output then carries no result, as one would be recorded with no partition (the
    UI's overview showed it as "Partition —")."""
    [spec] = context.check_specs
    if context.has_partition_key:
        account, day = split_key(context.partition_key)
        found = [f"{account}/{day}: {p}" for p in problems(account, day)]
        yield AssetCheckResult(passed=not found, metadata=_problems(found))
        return
    for key in context.partition_keys:
        account, day = split_key(key)
        found = [f"{account}/{day}: {p}" for p in problems(account, day)]
        yield AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=not found,
            partition=key,
            metadata=_problems(found),
            blocking=spec.blocking,
            target_materialization_data=checked_materialization(
                context.instance, spec.asset_key, key
            ),
        )
    yield Output(None)  # the check op's one output ("result"), which records no evaluation


def _problems(found: list[str]) -> dict[str, int | str]:
    return {"problems": len(found), "examples": "; ".join(found[:5]) or "none"}


def checked_materialization(
    instance: DagsterInstance, asset_key: AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The partition's latest materialization: without it the UI counts the result as stale
    (checked before that materialization) and shows the partition's check as missing."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp
    )


def days_outside(lake: Lake, table: str, column: str, account: str, day: date) -> list[str]:
    values = lake.read_partition(table, account, day, columns=[column]).column(column).to_pylist()
    wrong = sum(1 for v in values if v is not None and v.astimezone(UTC).date() != day)
    return [f"{wrong} row(s) whose {column} is not on {day}"] if wrong else []


def _duplicates(lake: Lake, account: str, day: date) -> list[str]:
    ids = (
        lake.read_partition("emails", account, day, columns=["email_id"])
        .column("email_id")
        .to_pylist()
    )
    extra = len(ids) - len(set(ids))
    return ([f"{extra} duplicate message(s)"] if extra else []) + days_outside(
        lake, "emails", "received_at", account, day
    )


def _unchunked(lake: Lake, account: str, day: date) -> list[str]:
    emails = lake.read_partition(
        "emails", account, day, columns=["email_id", "search_text", "attachment_texts"]
    )
    chunks = lake.read_partition(
        "email_chunks", account, day, columns=["email_id", "attachment"]
    ).to_pylist()
    chunked = {(c["email_id"], c["attachment"]) for c in chunks}
    missing = [
        f"{e['email_id']}" + (f" ({name})" if name else "")
        for e in emails.to_pylist()
        for name, text in [
            (None, e["search_text"]),
            *((t["name"], t["text"]) for t in e["attachment_texts"] or []),
        ]
        if (text or "").strip() and (e["email_id"], name) not in chunked
    ]
    return (
        [f"{len(missing)} text(s) of emails or attachments with no chunks, e.g. {missing[0]}"]
        if missing
        else []
    )


def _unembedded(
    lake: Lake, vectors: VectorsResource, service: ServiceIndexer | None, account: str, day: date
) -> list[str]:
    chunk_ids = set(
        lake.read_partition("email_chunks", account, day, columns=["chunk_id"])
        .column("chunk_id")
        .to_pylist()
    )
    # Read by the search service where it answers, so the run's process never imports LanceDB.
    stored = service.chunk_ids(account, day) if service else None
    if stored is None:
        stored = vectors.store().chunk_ids(account, day)
    problems = []
    if chunk_ids - stored:
        problems.append(f"{len(chunk_ids - stored)} chunk(s) without a vector")
    if stored - chunk_ids:
        problems.append(f"{len(stored - chunk_ids)} vector(s) for chunks the lake no longer has")
    return problems


def build_checks(partitions: MultiPartitionsDefinition) -> list[AssetChecksDefinition]:
    """The contracts between stages, each over `partitions`."""
    # Each check yields (per_partition); @asset_check's annotation admits only a returned
    # AssetCheckResult, though Dagster runs generator checks: hence the ignores below.

    @asset_check(asset="raw_messages", partitions_def=partitions, blocking=True)  # type: ignore[arg-type]
    def raw_messages_on_their_day(
        context: AssetCheckExecutionContext, lake: LakeResource
    ) -> Iterator[AssetCheckResult | AssetCheckEvaluation | Output[None]]:
        """Every raw message's INTERNALDATE (UTC) falls on the partition's day."""
        yield from per_partition(
            context, lambda a, d: days_outside(lake.lake, "raw_messages", "internaldate", a, d)
        )

    @asset_check(asset="emails", partitions_def=partitions, blocking=True)  # type: ignore[arg-type]
    def emails_unique_and_on_their_day(
        context: AssetCheckExecutionContext, lake: LakeResource
    ) -> Iterator[AssetCheckResult | AssetCheckEvaluation | Output[None]]:
        """No message appears twice in a partition, and none lies outside its day."""
        yield from per_partition(context, lambda a, d: _duplicates(lake.lake, a, d))

    @asset_check(asset="email_chunks", partitions_def=partitions)  # type: ignore[arg-type]
    def every_email_with_text_chunked(
        context: AssetCheckExecutionContext, lake: LakeResource
    ) -> Iterator[AssetCheckResult | AssetCheckEvaluation | Output[None]]:
        """Every email with search text has at least one chunk, and so has each attachment's text."""
        yield from per_partition(context, lambda a, d: _unchunked(lake.lake, a, d))

    @asset_check(asset="email_embeddings", partitions_def=partitions)  # type: ignore[arg-type]
    def every_chunk_embedded(
        context: AssetCheckExecutionContext,
        lake: LakeResource,
        vectors: VectorsResource,
        embedder: EmbedderResource,
    ) -> Iterator[AssetCheckResult | AssetCheckEvaluation | Output[None]]:
        """Every chunk of the lake has exactly one vector in LanceDB, and LanceDB holds nothing else for the partition."""
        service = embedder.service_indexer(vectors)
        yield from per_partition(
            context, lambda a, d: _unembedded(lake.lake, vectors, service, a, d)
        )

    return [
        raw_messages_on_their_day,
        emails_unique_and_on_their_day,
        every_email_with_text_chunked,
        every_chunk_embedded,
    ]
