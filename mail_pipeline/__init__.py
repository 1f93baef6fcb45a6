"""mail_pipeline: a searchable, queryable copy of recent email.

The Python API for notebooks: `search(...)` and `sql(...)`. Both read the settings as the CLI
does (environment, then `.env`) unless given them. Importing the package loads neither lancedb
nor torch; the first call does.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars

    from mail_pipeline.indexing.embedder import Embedder
    from mail_pipeline.indexing.search import SearchHit
    from mail_pipeline.settings import Settings


def _settings(settings: Settings | None) -> Settings:
    from mail_pipeline.settings import get_settings

    return settings or get_settings()


def search(
    query: str,
    k: int = 10,
    account: str | None = None,
    since: date | None = None,
    until: date | None = None,
    mode: str = "hybrid",
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    exclude_deleted: bool = False,
) -> list[SearchHit]:
    """The k emails that best match `query` (hybrid: meaning and words), best first; without mail
    deleted on the server (kept by accounts with on_server_delete=keep) when `exclude_deleted`."""
    from mail_pipeline.indexing.search import search as ranked

    return ranked(
        query,
        k,
        account,
        since,
        until,
        mode,
        settings=_settings(settings),
        embedder=embedder,
        exclude_deleted=exclude_deleted,
    )


def sql(query: str, *params: object, settings: Settings | None = None) -> polars.DataFrame:
    """A query over the warehouse's views (raw_messages, emails, threads, ...) as a polars DataFrame."""
    from mail_pipeline.storage import catalog
    from mail_pipeline.storage.lake import Lake

    current = _settings(settings)
    return catalog.frame(current.warehouse_path, query, params, Lake(current.lake_dir))
