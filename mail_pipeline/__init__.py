"""mail_pipeline: a searchable, queryable copy of recent email."""


def __getattr__(name: str):
    # Lazy: `import mail_pipeline` must not load lancedb or torch; `mail_pipeline.search(...)` does.
    if name == "search":
        from mail_pipeline.indexing.search import search

        globals()["search"] = search
        return search
    raise AttributeError(f"module 'mail_pipeline' has no attribute {name!r}")
