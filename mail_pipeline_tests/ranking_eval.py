"""Search quality per query class (identifier, subject, person, topic): recall@5 and MRR of the
hybrid search on the labelled dev set (retrieval_corpus.py) and on the indexed demo mailbox, with
the ranking's boosts and no-match floor and without them (plain reciprocal rank fusion).

    .venv/bin/python -m mail_pipeline_tests.ranking_eval
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mail_pipeline.indexing import Embedder, ranking
from mail_pipeline.indexing.search import search
from mail_pipeline.settings import Settings
from mail_pipeline_tests.retrieval_corpus import CORPUS, QUERIES

K = 5
DEPTH = 10  # MRR counts the first relevant hit among this many
CLASSES = ("identifier", "subject", "person", "topic")
PEOPLE = {"Priya Raman", "Jonas Lindqvist"}
# The demo mailbox's invoice, order and ticket numbers (demo/synthetic_text.py draws them).
DEMO_ID = re.compile(r"\b(?:INV-\d{4}-\d{5}|PO-\d{5}|(?:OPS|FIN|IT|PRJ)-\d{3,4})\b")
GIBBERISH = ("zzzzqqqq nonexistentword", "qwxzv plokmn", "asdfghjkl")

Labelled = tuple[str, str, set[str]]  # (class, query, relevant email ids)


def query_class(query: str) -> str:
    if query in PEOPLE:
        return "person"
    if " " not in query and ranking.is_identifier(query):
        return "identifier"
    return "topic"


def dev_queries() -> list[Labelled]:
    """The corpus's labelled queries by class, and each unique subject as a subject query."""
    labelled = [(query_class(q), q, relevant) for q, relevant in QUERIES]
    subjects: dict[str, set[str]] = {}
    for mail in CORPUS:
        subjects.setdefault(mail.subject, set()).add(mail.email_id)
    return labelled + [("subject", s, ids) for s, ids in subjects.items() if len(ids) == 1]


def demo_queries(data_dir: Path) -> list[Labelled]:
    """From the indexed demo: each id with the emails holding it, each subject with its emails,
    each sender's name with the emails they sent."""
    import duckdb

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT email_id, subject, from_name, body_text FROM emails").fetchall()
    ids: dict[str, set[str]] = {}
    subjects: dict[str, set[str]] = {}
    people: dict[str, set[str]] = {}
    for email_id, subject, name, body in rows:
        for found in DEMO_ID.findall(f"{subject}\n{body}"):
            ids.setdefault(found, set()).add(email_id)
        if subject:
            subjects.setdefault(subject, set()).add(email_id)
        if name:
            people.setdefault(name, set()).add(email_id)
    return (
        [("identifier", q, r) for q, r in sorted(ids.items())]
        + [("subject", q, r) for q, r in sorted(subjects.items())]
        + [("person", q, r) for q, r in sorted(people.items())]
    )


def scores(found: list[str], relevant: set[str]) -> tuple[float, float]:
    """(recall@K, reciprocal rank) of one ranked answer."""
    recall = len(set(found[:K]) & relevant) / min(len(relevant), K)
    rank = next((n for n, email in enumerate(found[:DEPTH], 1) if email in relevant), None)
    return recall, 1.0 / rank if rank else 0.0


def evaluate(
    queries: list[Labelled], settings: Settings, embedder: Embedder
) -> dict[str, tuple[int, float, float]]:
    """Per class: (queries, mean recall@K, MRR) of the hybrid search."""
    sums: dict[str, list[float]] = {c: [0, 0.0, 0.0] for c in CLASSES}
    for cls, query, relevant in queries:
        hits = search(query, k=DEPTH, settings=settings, embedder=embedder)
        recall, rr = scores([hit.email_id for hit in hits], relevant)
        sums[cls][0] += 1
        sums[cls][1] += recall
        sums[cls][2] += rr
    return {c: (int(n), r / n, m / n) for c, (n, r, m) in sums.items() if n}


@contextmanager
def plain_fusion() -> Iterator[None]:
    """Reciprocal rank fusion alone, as before the boosts and the floor."""
    names = [name for name in vars(ranking) if name.endswith("_BOOST")]
    saved: dict[str, Any] = {name: getattr(ranking, name) for name in names}
    saved["SIMILARITY_FLOOR"] = ranking.SIMILARITY_FLOOR
    try:
        for name in names:
            setattr(ranking, name, 0.0)
        ranking.SIMILARITY_FLOOR = -1.0
        yield
    finally:
        for name, value in saved.items():
            setattr(ranking, name, value)


def best_similarities(
    queries: list[str], settings: Settings, embedder: Embedder
) -> list[tuple[str, float]]:
    """Each query's best chunk similarity by vector, for choosing the floor."""
    hits = [search(q, k=1, mode="vector", settings=settings, embedder=embedder) for q in queries]
    return [(q, h[0].score if h else 0.0) for q, h in zip(queries, hits, strict=True)]


def report(name: str, queries: list[Labelled], settings: Settings, embedder: Embedder) -> None:
    with plain_fusion():
        before = evaluate(queries, settings, embedder)
    after = evaluate(queries, settings, embedder)
    print(f"\n{name}: class, queries, recall@{K} before -> after, MRR before -> after")
    for cls, (n, recall, mrr) in after.items():
        b = before[cls]
        print(f"  {cls:10s} {n:3d}  {b[1]:.3f} -> {recall:.3f}   {b[2]:.3f} -> {mrr:.3f}")
    sims = best_similarities([*GIBBERISH, *(q for _, q, _ in queries)], settings, embedder)
    print("  best similarity, gibberish:", [f"{s:.3f}" for _, s in sims[: len(GIBBERISH)]])
    print(
        "  lowest best similarity of the labelled queries:",
        sorted(sims[len(GIBBERISH) :], key=lambda x: x[1])[:3],
    )


def build_demo(root: Path) -> Path:
    """The indexed demo mailbox of the search service's tests (conftest.py's `indexed_demo`)."""
    import os

    from mail_pipeline.storage import crypto
    from mail_pipeline_tests import indexed_demo

    data_dir = root / "data"
    os.chdir(root)
    os.environ.update(
        {
            crypto.KEY_VARIABLE: crypto.generate_key(),
            "MAIL_PIPELINE_DATA_DIR": str(data_dir),
            "MAIL_PIPELINE_TODAY": indexed_demo.TODAY,
        }
    )
    indexed_demo.build(data_dir)
    return data_dir


def main() -> None:
    import tempfile

    from mail_pipeline.storage.vectors import VectorStore
    from mail_pipeline_tests.retrieval_corpus import index_mails, shared_embedder

    embedder = shared_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "dev")
        store = VectorStore(settings.lancedb_dir, dimension=embedder.dimension)
        index_mails(CORPUS, embedder, store)
        report("dev set (retrieval_corpus.py)", dev_queries(), settings, embedder)
        data_dir = build_demo(Path(tmp))
        demo = Settings(data_dir=data_dir)
        report("demo mailbox (indexed_demo.py)", demo_queries(data_dir), demo, embedder)


if __name__ == "__main__":
    main()
