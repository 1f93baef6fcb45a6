"""The registry of benchmark sections: each measures one stage and returns named figures.

A new section (embedding, search, sensor, backfill) is one module that calls `register(...)`
at import, plus its name in `bench.__main__.SECTION_MODULES`. The report is drawn from the
declarations here, so a section's table and goals need no code in `report.py`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.mailbox import Workbench

_OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Figure:
    key: str  # the key in results.json
    label: str
    unit: str = ""
    digits: int = 0


@dataclass(frozen=True)
class Goal:
    key: str  # a figure of the section
    op: str  # one of >=, >, <=, <
    target: float
    text: str  # the comparison in words, for the report

    def met(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.target)


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    run: Callable[[Workbench], dict[str, float]]
    figures: tuple[Figure, ...]
    goals: tuple[Goal, ...] = ()
    method: str = ""  # how it is measured, one paragraph of Markdown
    # Figures whose keys depend on the run's own parameters, read back from the results (the
    # scale section's ladder of N writes keys named by each N).
    figures_for: Callable[[dict], tuple[Figure, ...]] | None = None

    def all_figures(self, results: dict) -> tuple[Figure, ...]:
        return self.figures + (self.figures_for(results) if self.figures_for else ())


SECTIONS: dict[str, Section] = {}


def register(section: Section) -> Section:
    if section.name in SECTIONS:
        raise ValueError(f"bench section {section.name!r} registered twice")
    SECTIONS[section.name] = section
    return section
