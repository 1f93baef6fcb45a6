"""The vector index policy over backfills of any size (pure: no LanceDB; the store's own test in
test_vectors.py checks LanceDB reports the segments this model predicts)."""

from __future__ import annotations

import math

import pytest

from mail_pipeline.storage.index_policy import Action, Decision, Policy

POLICY = Policy(min_rows=10_000, delta_rows=5_000, growth=2.0)


def backfill(policy: Policy, rows_per_write: int, writes: int) -> dict[str, float]:
    """The policy's decisions over `writes` writes of `rows_per_write` new rows each, carried out
    on a model of the index: how many whole builds, rows built per row, most segments and
    unindexed rows a search met."""
    rows, segments, builds, built, most_segments, most_unindexed = 0, [], 0, 0, 0, 0
    for _ in range(writes):
        rows += rows_per_write
        decision = policy.decide(rows, segments, rows - sum(segments))
        after = policy.after(decision, rows, segments)
        if decision.action is Action.BUILD:
            builds, built = builds + 1, built + rows
        elif decision.action is Action.ADD:
            built += after[-1]
        segments = after
        most_segments = max(most_segments, len(segments))
        if segments:
            most_unindexed = max(most_unindexed, rows - sum(segments))
    return {
        "builds": builds,
        "per_row": built / rows,
        "segments": most_segments,
        "unindexed": most_unindexed,
    }


@pytest.mark.parametrize("messages", [20_000, 200_000, 2_000_000])
def test_a_backfill_builds_each_row_a_logarithmic_number_of_times(messages):
    """A 30-day backfill at 2.8 chunks per message (the scale bench's mail): whole builds and
    the builds each row goes through grow with log(rows), segments too, and a search never
    scans as many rows as a segment's worth."""
    rows = messages * 28 // 10
    figures = backfill(POLICY, rows // 30, 30)
    levels = math.log2(rows / POLICY.delta_rows)
    assert 1 <= figures["builds"] <= math.log2(rows / POLICY.min_rows) + 1
    assert figures["per_row"] <= 2 + levels
    assert figures["segments"] <= 1 + levels
    assert figures["unindexed"] < POLICY.delta_rows


def test_many_small_writes_stay_near_linear():
    """Account × day partitions are small: 3,000 writes of 100 rows (300,000 rows)."""
    figures = backfill(POLICY, 100, 3_000)
    assert figures["builds"] == 1 + math.floor(math.log2(300_000 / POLICY.min_rows))
    assert figures["per_row"] <= 2 + math.log2(300_000 / POLICY.delta_rows)
    assert figures["unindexed"] < POLICY.delta_rows


@pytest.mark.parametrize(
    ("rows", "segments", "unindexed", "expected"),
    [
        (9_999, [], 9_999, Decision(Action.KEEP)),
        (10_000, [], 10_000, Decision(Action.BUILD)),
        (30_000, [20_000], 10_000, Decision(Action.ADD, 0)),  # a first segment beside the base
        (24_000, [20_000], 4_000, Decision(Action.KEEP)),  # under delta_rows: scanned
        (40_000, [20_000], 20_000, Decision(Action.BUILD)),  # grown 2× past the base
        # the new rows absorb the newest segments no larger than what they hold so far
        (53_000, [30_000, 12_000, 5_000], 6_000, Decision(Action.ADD, 1)),
        (39_000, [20_000, 6_000, 6_000], 7_000, Decision(Action.ADD, 2)),
        (9_000, [12_000], 0, Decision(Action.DROP)),  # small again: a scan is enough
    ],
)
def test_decisions(rows, segments, unindexed, expected):
    decision = POLICY.decide(rows, segments, unindexed)
    assert (decision.action, decision.merge) == (expected.action, expected.merge)
    assert decision.reason


def test_after_models_what_lancedb_reports():
    assert POLICY.after(Decision(Action.ADD, 2), 39_000, [20_000, 6_000, 6_000]) == [20_000, 19_000]
    assert POLICY.after(Decision(Action.ADD, 0), 30_000, [20_000]) == [20_000, 10_000]
    assert POLICY.after(Decision(Action.BUILD), 40_000, [20_000, 9_000]) == [40_000]
    assert POLICY.after(Decision(Action.DROP), 9_000, [12_000]) == []
    assert POLICY.after(Decision(Action.KEEP), 24_000, [20_000]) == [20_000]
