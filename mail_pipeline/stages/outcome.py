"""What a stage reports for one (account, day) partition: rows, a one-line summary, and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass
class PartitionOutcome:
    account: str
    day: date
    rows: int = 0
    summary: str = ""
    # Plain JSON-able values (numbers, strings, lists, dicts) shown with the partition.
    figures: dict[str, Any] = field(default_factory=dict)


def out_of_window(account: str, day: date) -> PartitionOutcome:
    return PartitionOutcome(
        account,
        day,
        summary="outside the retention window: nothing stored",
        figures={"skipped_out_of_window": True},
    )


def noting_rebuilt(outcome: PartitionOutcome, rebuilt: list[str]) -> PartitionOutcome:
    """`outcome`, saying which damaged files of the partition its run set aside and rebuilt."""
    if rebuilt:
        outcome.summary += "; **" + "; ".join(rebuilt) + "**"
        outcome.figures["damaged_files_rebuilt"] = rebuilt
    return outcome
