"""The LanceDB store on a real database in a temporary directory, and the embedding cache."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from mail_pipeline.indexing import embed_with_cache
from mail_pipeline.indexing.search import ranked_chunks
from mail_pipeline.storage import indexes
from mail_pipeline.storage.index_policy import Policy
from mail_pipeline.storage.indexes import vector_segments
from mail_pipeline.storage.vectors import VectorStore, reciprocal_rank_fusion, vector_schema
from mail_pipeline_tests.retrieval_corpus import (
    DISCLAIMER,
    Mail,
    index_mails,
    mail_chunks,
    shared_embedder,
)

DIM = 8
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def rows(account: str, day: date, n: int, word: str = "hello", model_id: str = "m") -> list[dict]:
    rng = np.random.default_rng(abs(hash((account, day, word))) % 2**32)
    return [
        {
            "chunk_id": f"{account}-{day}-{i}",
            "email_id": f"{account}-{day}-e{i // 2}",
            "account": account,
            "day": day,
            "thread_id": "t1",
            "subject": f"subject {i}",
            "sender": "alice@example.com",
            "sent_at": datetime.combine(day, datetime.min.time(), tzinfo=UTC),
            "text": f"Subject: s\n{word} number {i} of {account} on {day}",
            "text_sha256": f"{word}{i:04d}".encode().hex(),
            "model_id": model_id,
            "vector": rng.random(DIM, dtype=np.float32),
        }
        for i in range(n)
    ]


class QueryVector:
    """An embedder whose every query embeds to one given vector."""

    def __init__(self, vector):
        self.vector = vector

    def encode_query(self, _text: str):
        return self.vector


def store_search(
    store: VectorStore, text: str | None, vector, *, mode: str, k: int, **filters
) -> list[dict]:
    """The chunk ranking production search uses (indexing.search.ranked_chunks), k best."""
    return ranked_chunks(store, text, mode, QueryVector(vector), filters)(k)


@pytest.fixture
def store(tmp_path) -> VectorStore:
    return VectorStore(tmp_path / "lancedb", dimension=DIM)


def test_empty_store(store):
    assert store.count() == 0 and store.partition_counts() == {} and store.disk_bytes() == 0
    assert store_search(store, "anything", np.ones(DIM), mode="hybrid", k=5) == []
    assert store.cached_vectors(["ab"], "m") == {}
    assert store.drop_before(D3) == 0


def test_replace_partition_is_idempotent(store):
    assert store.replace_partition("work", D1, rows("work", D1, 6)) == 6
    store.replace_partition("home", D1, rows("home", D1, 4))
    store.replace_partition("work", D1, rows("work", D1, 6))
    assert store.count() == 10 and store.count("work", D1) == 6
    store.replace_partition("work", D1, rows("work", D1, 3, word="fewer"))
    assert store.partition_counts() == {("work", D1): 3, ("home", D1): 4}
    assert store.replace_partition("work", D1, []) == 0
    assert store.partition_counts() == {("home", D1): 4}


def test_rows_of_another_partition_are_refused(store):
    with pytest.raises(ValueError, match="other partitions"):
        store.replace_partition("work", D1, rows("work", D2, 2))


def test_search_modes_and_filters(store):
    for account, day in [("work", D1), ("work", D2), ("home", D3)]:
        store.replace_partition(account, day, rows(account, day, 4, word=f"kiwi{account}"))
    vector = np.ones(DIM, dtype=np.float32)
    for mode in ("vector", "text", "hybrid"):
        hits = store_search(store, "kiwiwork", vector, mode=mode, k=20, account="work", since=D2)
        assert hits and {(h["account"], h["day"]) for h in hits} == {("work", D2)}
        assert all("vector" not in h and isinstance(h["_score"], float) for h in hits)
        assert hits == sorted(hits, key=lambda h: -h["_score"])
    assert {
        h["day"] for h in store_search(store, "kiwiwork", vector, mode="text", k=20, until=D1)
    } == {D1}
    with pytest.raises(ValueError, match="mode"):
        store_search(store, "x", vector, mode="fuzzy", k=3)


def test_the_vector_index_grows_in_segments_and_is_rebuilt_as_the_table_doubles(
    store, monkeypatch, caplog
):
    """Twelve writes of 4 rows under a policy scaled down 1,000 times: LanceDB's segments are
    those the policy's model predicts, rows not yet in a segment are fewer than a segment's worth,
    the row just written is found at once (vector, words and hybrid), and the whole index is
    built 3 times (at 12, 24 and 48 rows: log2 of the growth)."""
    policy = Policy(min_rows=12, delta_rows=6, growth=2.0)
    monkeypatch.setattr(VectorStore, "policy", policy)
    caplog.set_level(logging.INFO, logger="mail_pipeline.storage.indexes")
    expected: list[int] = []
    for n, day in enumerate(D1 + timedelta(days=i) for i in range(12)):
        written = rows("work", day, 4, word=f"fresh{n}")
        store.replace_partition("work", day, written)
        table = store._open()
        name = next((i.name for i in table.list_indices() if i.columns == ["vector"]), None)
        segments, unindexed = vector_segments(table, name)
        total = 4 * (n + 1)
        expected = policy.after(
            policy.decide(total, expected, total - sum(expected)), total, expected
        )
        assert segments == expected, n
        assert unindexed == total - sum(segments) and (not segments or unindexed < 6)
        newest = written[3]
        assert store.search_vectors(newest["vector"], 1)[0]["chunk_id"] == newest["chunk_id"]
        for mode in ("text", "hybrid"):
            found = store_search(store, f"fresh{n}", newest["vector"], mode=mode, k=4)
            assert newest["chunk_id"] in {h["chunk_id"] for h in found}, (n, mode)
    assert expected == [48]
    builds = [r for r in caplog.records if r.getMessage().startswith("vector index: build")]
    segments_added = [r for r in caplog.records if r.getMessage().startswith("vector index: add")]
    assert len(builds) == 3 and len(segments_added) == 3


def hit(chunk_id: str, account: str = "work") -> dict:
    return {"chunk_id": chunk_id, "account": account, "_score": 0.5}


@pytest.mark.parametrize(
    ("rankings", "k", "expected"),
    [
        ([[], []], 5, []),
        ([["a", "b"], []], 5, ["a", "b"]),  # one side empty: its order stands
        # 1/60 + 1/62 > 2/61; the tie keeps first-seen order
        (
            [["a", "b", "c"], ["c", "b", "a"]],
            5,
            ["a", "c", "b"],
        ),
        ([["a", "b"], ["b", "x"]], 5, ["b", "a", "x"]),  # found by both beats first by one
        ([["a", "b", "c"], ["c", "d"]], 2, ["c", "a"]),  # cut to k after fusing
    ],
)
def test_reciprocal_rank_fusion(rankings, k, expected):
    fused = reciprocal_rank_fusion([[hit(c) for c in ranking] for ranking in rankings], k)
    assert [h["chunk_id"] for h in fused] == expected
    assert fused == sorted(fused, key=lambda h: -h["_score"])


def test_fusion_scores_and_keys():
    fused = reciprocal_rank_fusion([[hit("a"), hit("a", "home")], [hit("a")]], 5, constant=60)
    scores = {(h["account"], h["chunk_id"]): h["_score"] for h in fused}
    # The same chunk id in two accounts is two chunks; ranks count from 0, as LanceDB's RRFReranker.
    assert scores == {("work", "a"): pytest.approx(2 / 60), ("home", "a"): pytest.approx(1 / 61)}


def test_cache_lookup(store):
    written = rows("work", D1, 4)
    store.replace_partition("work", D1, written)
    found = store.cached_vectors([r["text_sha256"] for r in written] + ["ffff"], "m")
    assert set(found) == {r["text_sha256"] for r in written}
    np.testing.assert_array_equal(found[written[2]["text_sha256"]], written[2]["vector"])
    assert store.cached_vectors([written[0]["text_sha256"]], "another-model") == {}


def files_containing(root: Path, marker: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and marker in p.read_bytes()]


def test_drop_before_removes_rows_from_disk(store):
    marker = "zqxdroppedmarker7731"
    store.replace_partition("work", D1, rows("work", D1, 5, word=marker))
    store.replace_partition("work", D2, rows("work", D2, 2, word="zebra"))
    store.replace_partition("work", D1, rows("work", D1, 5, word=marker))  # an older version too
    store.replace_partition("home", D3, rows("home", D3, 3, word="zebra"))
    root = Path(store.uri)
    assert files_containing(root, marker.encode())  # the check below can see it at all
    assert store.drop_before(D2) == 5
    assert files_containing(root, marker.encode()) == []
    assert store.count() == 5 and set(store.partition_counts()) == {("work", D2), ("home", D3)}
    assert len(store_search(store, "zebra", None, mode="text", k=10)) == 5
    assert store_search(store, marker, None, mode="text", k=10) == []
    store.replace_partition("work", D3, rows("work", D3, 2, word="latecomer"))
    assert len(store_search(store, "latecomer", None, mode="text", k=10)) == 2


def _writer(uri: str, account: str, rounds: int) -> None:
    store = VectorStore(uri, dimension=DIM)
    for i in range(rounds):
        day = D1 + timedelta(days=i % 2)
        store.replace_partition(account, day, rows(account, day, 5 + i % 2, word=f"w{account}"))


def test_parallel_writers_of_different_accounts(store):
    store.replace_partition("seed", D1, rows("seed", D1, 1))
    context = multiprocessing.get_context("spawn")  # lance runs threads: never fork it
    workers = [
        context.Process(target=_writer, args=(store.uri, account, 6))
        for account in ("acct-a", "acct-b")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert store.partition_counts() == {
        ("seed", D1): 1,
        ("acct-a", D1): 5,
        ("acct-a", D2): 6,
        ("acct-b", D1): 5,
        ("acct-b", D2): 6,
    }
    assert len(store_search(store, "wacct", None, mode="text", k=50)) == 22


THREAD_DAY = date(2026, 3, 4)
THANKS = "Thanks, approved.\n\n-- \nAlice Smith\nHead of Finance, Our Co\n\n" + DISCLAIMER
THREAD = [  # a 10-message thread; quotes already stripped by the parser, so what repeats is exact
    Mail(
        f"thread-{i}",
        "work",
        THREAD_DAY,
        "Re: Q3 budget review",
        "alice@ourco.example" if i % 2 else "bob@ourco.example",
        THANKS
        if i % 2
        else f"Revision {i}: moved {i * 1000} EUR from events to paid search.\n\n-- \nBob\n\n{DISCLAIMER}",
        thread_id="q3-budget",
    )
    for i in range(10)
]


def test_embedding_cache_on_a_thread(tmp_path):
    embedder = shared_embedder()
    cached, plain = (
        VectorStore(tmp_path / name, dimension=embedder.dimension) for name in ("cached", "plain")
    )
    produced, embedded = index_mails(THREAD, embedder, cached)
    assert (produced, embedded) == (10, 6)  # Alice's five identical replies embedded once
    # duplicates within a batch
    assert index_mails(THREAD, embedder, plain, use_cache=False) == (
        10,
        6,
    )
    assert index_mails(THREAD, embedder, cached) == (10, 0)  # re-materialized: everything cached
    assert cached.count() == plain.count() == 10
    for query in ("budget moved to paid search", "Alice approved", "confidential disclaimer"):
        vector = embedder.encode([query])[0]
        with_cache, without = (
            store_search(s, query, vector, mode="hybrid", k=10) for s in (cached, plain)
        )
        assert [h["chunk_id"] for h in with_cache] == [h["chunk_id"] for h in without]
        np.testing.assert_allclose(
            [h["_score"] for h in with_cache], [h["_score"] for h in without], rtol=1e-6
        )


def test_embed_with_cache_without_store_dedupes():
    embedder = shared_embedder()
    chunks = mail_chunks(THREAD[1], embedder) * 3 + mail_chunks(THREAD[2], embedder)
    vectors, embedded = embed_with_cache([(c.text, c.text_sha256) for c in chunks], embedder, None)
    assert vectors.shape == (4, 384) and embedded == 2
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert embed_with_cache([], embedder, None)[1] == 0


def test_a_fragmented_table_is_compacted(store, monkeypatch):
    # new rows stay outside the index: the compaction must keep it whole
    monkeypatch.setattr(VectorStore, "policy", Policy(min_rows=6, delta_rows=1000, growth=100))
    days = [D1 + timedelta(days=i) for i in range(indexes.COMPACT_AT_FRAGMENTS + 1)]
    fragments, segments = [], []
    for day in days:
        store.replace_partition("work", day, rows("work", day, 3))
        fragments.append(len(store._open().to_lance().get_fragments()))
        segments += [
            i.num_segments for i in store._open().list_indices() if i.columns == ["vector"]
        ]
    assert set(segments) == {1}  # the compaction folded nothing into the vector index
    # a compaction ran
    assert any(after < before for before, after in itertools.pairwise(fragments))
    assert max(fragments) < indexes.COMPACT_AT_FRAGMENTS  # as soon as the limit was reached
    assert store.count() == 3 * len(days)
    assert set(store.partition_counts().values()) == {3}
    last = rows("work", days[-1], 3)[2]
    assert store.search_vectors(last["vector"], 1)[0]["chunk_id"] == last["chunk_id"]


def test_an_open_store_sees_other_writers_commits(tmp_path):
    reader = VectorStore(tmp_path / "lancedb", dimension=DIM)
    assert reader.count() == 0  # no table yet: nothing cached
    writer = VectorStore(tmp_path / "lancedb", dimension=DIM)
    writer.replace_partition("work", D1, rows("work", D1, 4))
    assert reader.count() == 4
    writer.replace_partition("work", D1, rows("work", D1, 2))
    writer.replace_partition("home", D2, rows("home", D2, 3, word="fresh"))
    assert reader.count() == 5 and reader.count(account="home") == 3
    assert [h["account"] for h in reader.search_words("fresh", 10)] == ["home"] * 3


def test_upkeep_removes_files_an_interrupted_write_left(store):
    import shutil
    import uuid

    store.replace_partition("work", D1, rows("work", D1, 5))
    store.replace_partition("work", D2, rows("work", D2, 3))
    data = next(Path(store.uri).glob("*.lance")) / "data"
    # A write killed before its commit leaves data files no version references: a copy under a
    # fresh name is exactly that on disk.
    orphan = data / f"{uuid.uuid4().hex}.lance"
    shutil.copy(next(data.glob("*.lance")), orphan)
    store._open().to_lance().cleanup_old_versions(older_than=indexes.PRUNE_OLDER_THAN)
    # Lance's own cleanup keeps it for 7 days: it might be a commit in flight
    assert orphan.exists()
    freed = store.remove_unreferenced()
    assert not orphan.exists() and freed >= 1
    assert store.partition_counts() == {("work", D1): 5, ("work", D2): 3}
    assert len(store.search_words("hello", 20)) == 8


def test_a_table_from_before_attachments_is_searched_then_migrated(tmp_path):
    """A table created without the `attachment` column answers searches as it is, and the next
    partition write adds the column (null for the rows already there)."""
    import lancedb

    old = rows("work", D1, 4)
    schema = vector_schema(DIM)
    legacy = schema.remove(schema.get_field_index("attachment"))
    lancedb.connect(tmp_path / "lancedb").create_table(VectorStore.TABLE, schema=legacy).add(
        [{**row, "vector": row["vector"].tolist()} for row in old]
    )
    store = VectorStore(tmp_path / "lancedb", dimension=DIM)
    hits = store.search_vectors(np.ones(DIM, dtype=np.float32), 2)
    assert len(hits) == 2 and "attachment" not in hits[0]
    store.replace_partition(
        "work", D2, [{**row, "attachment": "plan.pdf"} for row in rows("work", D2, 2)]
    )
    assert "attachment" in store._open().schema.names
    found = {
        hit["chunk_id"]: hit["attachment"]
        for hit in store.search_vectors(np.ones(DIM, dtype=np.float32), 10)
    }
    assert found == {
        **{row["chunk_id"]: None for row in old},
        **{f"work-{D2}-{i}": "plan.pdf" for i in range(2)},
    }


def test_a_table_from_before_deleted_at_gains_it_and_filters_on_it(tmp_path):
    import lancedb

    schema = vector_schema(DIM)
    legacy = schema.remove(schema.get_field_index("deleted_at"))
    lancedb.connect(tmp_path / "lancedb").create_table(VectorStore.TABLE, schema=legacy).add(
        [{**row, "vector": row["vector"].tolist()} for row in rows("a", D1, 1, "old")]
    )
    store = VectorStore(tmp_path / "lancedb", dimension=DIM)
    assert len(store.search_words("old", 5, live_only=True)) == 1  # searchable before any write
    kept = [
        {**row, "deleted_at": datetime(2026, 11, 2, tzinfo=UTC)} for row in rows("a", D2, 1, "gone")
    ]
    store.replace_partition("a", D2, [*rows("a", D2, 2), {**kept[0], "chunk_id": "kept"}])
    found = store.search_words("gone", 5)
    assert [r["chunk_id"] for r in found] == ["kept"] and found[0]["deleted_at"] is not None
    assert store.search_words("gone", 5, live_only=True) == []
    assert len(store.search_words("hello", 5, live_only=True)) == 2
