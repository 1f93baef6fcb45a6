"""Where the time of the `ingest` runs in a Dagster instance goes, from their event logs: the
run queue, the run process's start (spawn, imports, code load), each step, the whole run; and,
given when each message arrived, the time from the arrival to its run being created (the
watcher's wake-up and the sensor's tick).

`python -m bench.run_breakdown <DAGSTER_HOME>` prints the medians; the live section records them.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

MARKS = {
    DagsterEventType.RUN_STARTING: "starting",
    DagsterEventType.RUN_START: "start",
    DagsterEventType.RUN_SUCCESS: "end",
}


def run_times(instance: DagsterInstance, run_id: str, created: float) -> dict[str, float]:
    marks: dict[str, float] = {}
    steps: dict[str, list[float]] = {}
    for entry in instance.all_logs(run_id):
        kind = entry.dagster_event.event_type if entry.dagster_event else None
        if kind in MARKS:
            marks.setdefault(MARKS[kind], entry.timestamp)
        elif kind == DagsterEventType.STEP_START and entry.step_key:
            steps[entry.step_key] = [entry.timestamp]
        elif kind == DagsterEventType.STEP_SUCCESS and entry.step_key in steps:
            steps[entry.step_key].append(entry.timestamp)
    times = {
        "queue_s": marks["starting"] - created,
        "process_start_s": marks["start"] - marks["starting"],
        "total_s": marks["end"] - created,
    }
    times |= {f"step_{key}_s": ends[1] - ends[0] for key, ends in steps.items() if len(ends) == 2}
    return times


def breakdown(home: str, arrivals: Sequence[float] = ()) -> dict[str, float]:
    """Medians over the instance's successful runs, by part; with `arrivals` (epoch seconds of
    each APPEND), `arrival_to_run_created_s`: from each arrival to the first run created after it."""
    parts: dict[str, list[float]] = defaultdict(list)
    with DagsterInstance.from_config(home) as instance:
        records = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        created_at = sorted(r.create_timestamp.timestamp() for r in records)
        for arrived in arrivals:
            after = [c for c in created_at if c >= arrived]
            if after:
                parts["arrival_to_run_created_s"].append(after[0] - arrived)
        for record in records:
            created = record.create_timestamp.timestamp()
            try:
                times = run_times(instance, record.dagster_run.run_id, created)
            except KeyError:  # a run without the marks of a launched run
                continue
            for part, seconds in times.items():
                parts[part].append(seconds)
    return {part: statistics.median(values) for part, values in parts.items()}


if __name__ == "__main__":
    for part, seconds in breakdown(sys.argv[1]).items():
        print(f"{part:<60} {seconds:7.2f} s")
