"""When the vector index is built whole and when new rows are added to it as a segment.

Building the HNSW graph costs about the same per row whether the rows are a whole table or a
few thousand new ones (3.4 ms/row whole, 2.5 as a 3,000-row segment, lancedb 0.40 on 2 busy
cores), so what a backfill pays is the number of times each row goes through a build. Rebuilding
the whole index every 5,000 new rows (the policy before this one) put each row through a build
N/10,000 times: quadratic in the mail (at 20,000 messages the LanceDB writes did not end in 9
minutes). Here:

- new rows are scanned (exactly, by LanceDB) until there are `delta_rows` of them, then indexed
  as a new segment, merged with the newest segments no larger than what it already holds (a
  binary counter: segment sizes double going back, so there are at most log2(rows / delta_rows)
  of them, and each row is merged that many times at most);
- the whole index is rebuilt only when the table has grown `growth` times past the rows of its
  base segment (the last whole build): the whole builds of a growing table are a geometric series,
  at most `growth / (growth - 1)` times its final rows, and there are log2(rows / min_rows) of them.

Each row thus goes through 2 + log2(rows / delta_rows) builds at most, while a search walks at
most 1 + log2(rows / delta_rows) graphs and scans fewer than `delta_rows` rows. Pure: no LanceDB
here, so the tests can run the policy over a backfill of any size.

Measured on the scale bench's vectors stage at 20,000 messages (56,164 chunks, 30 days), the old
and this policy side by side on 2 cores at load 8-12: 1,975 s and 967 s (98.8 and 48.4 ms per
message); whole builds at 11.6k, 24.7k and 50.3k rows here against 9 before. On the stores they
left (2 segments here, 1 before), 50 queries near a stored vector found it first 50/50 times here
and 45/50 before, with vector and hybrid medians within the noise of the load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

# Below this many rows a flat scan of the vectors takes a few milliseconds and needs no upkeep.
VECTOR_INDEX_MIN_ROWS = 10_000
# New rows are scanned (about 0.7 ms per 1,000) until this many wait; then they become a segment.
VECTOR_DELTA_ROWS = 5_000
# The whole index is rebuilt once the table holds this many times the rows of its last whole build.
VECTOR_REBUILD_GROWTH = 2.0


class Action(Enum):
    KEEP = "keep"  # nothing to do: the index (or the scan) covers the rows well enough
    BUILD = "build"  # build the whole index, replacing every segment
    ADD = "add"  # index the unindexed rows as a segment, merged with the newest `merge` segments
    DROP = "drop"  # the table is small again: a scan is enough


@dataclass(frozen=True)
class Decision:
    action: Action
    merge: int = 0  # ADD: how many of the newest segments the new one absorbs
    reason: str = ""


@dataclass(frozen=True)
class Policy:
    min_rows: int = VECTOR_INDEX_MIN_ROWS
    delta_rows: int = VECTOR_DELTA_ROWS
    growth: float = VECTOR_REBUILD_GROWTH

    def decide(self, rows: int, segments: Sequence[int], unindexed: int) -> Decision:
        """What to do with the vector index of a table of `rows` rows, whose index segments hold
        `segments` rows each (oldest, the base, first; none without an index) and which has
        `unindexed` rows no segment covers."""
        if not segments:
            if rows >= self.min_rows:
                return Decision(Action.BUILD, reason=f"{rows} rows reached {self.min_rows}")
            return Decision(Action.KEEP, reason=f"{rows} rows: scanned")
        if rows < self.min_rows:
            return Decision(Action.DROP, reason=f"{rows} rows, under {self.min_rows}")
        if rows >= self.growth * segments[0]:
            return Decision(
                Action.BUILD, reason=f"{rows} rows, {self.growth:g} × the base's {segments[0]}"
            )
        if unindexed < self.delta_rows:
            return Decision(Action.KEEP, reason=f"{unindexed} unindexed rows: scanned")
        merged, merge = unindexed, 0
        for size in reversed(segments[1:]):  # never the base: that is the whole build's job
            if size > merged:
                break
            merged, merge = merged + size, merge + 1
        return Decision(Action.ADD, merge, reason=f"{unindexed} unindexed rows, {merge} merged")

    def after(self, decision: Decision, rows: int, segments: Sequence[int]) -> list[int]:
        """The segments once `decision` is carried out on this table: what LanceDB reports after
        it, for running the policy over a backfill without building anything."""
        if decision.action is Action.BUILD:
            return [rows]
        if decision.action is Action.DROP:
            return []
        if decision.action is Action.ADD:
            kept = list(segments[: len(segments) - decision.merge])
            return [*kept, rows - sum(kept)]
        return list(segments)
