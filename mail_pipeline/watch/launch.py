"""The watcher's shortcut for new mail: an `ingest` run of the account's today, requested through
the Dagster webserver's GraphQL API (as `mail-pipeline backfill` does) the moment IDLE reports
EXISTS.

Why not only the wake-up: Dagster's sensor daemon evaluates sensors at most every 5 s whatever
their interval, and the evaluation (a login and STATUS) comes on top; from APPEND to the run
being created took 4.5 s of 17 s with the wake-up alone (the live bench's watcher case, load 5-7,
`live_arrival_to_run_created_s`). The wake-up is still written: the sensor keeps finding
everything else (other days, flags, expunges, the cursor), and does not request today's run
again while this one waits to start (`defs.sensors.queued_run_covers`). A burst of arrivals makes
one run: while a run of the partition waits to start, it will fetch the new mail too, and nothing
more is launched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from mail_pipeline import logs
from mail_pipeline.runtime.webserver import (
    ACCOUNT_DIMENSION_TAG,
    ACCOUNT_TAG,
    LAUNCH_RUN,
    LOOKUP,
    TRIGGER_TAG,
    Post,
    RunRefused,
    graphql_data,
    job_selector,
    refusal,
)

log = logging.getLogger(__name__)

WATCHER_TRIGGER = "watcher"

PENDING = """
query($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags, statuses: [QUEUED, NOT_STARTED, STARTING]}, limit: 1) {
    ... on Runs { results { runId } }
    ... on PythonError { message }
  }
}"""


def partition_tags(account: str, day: date) -> dict[str, str]:
    """The tags Dagster gives a run of one account x day partition (the run queue limits runs per
    account by dagster/partition/account, dagster.yaml) and ours."""
    return {
        # A multi-partition key's string form (defs.partitions.split_key), without importing Dagster.
        "dagster/partition": f"{account}|{day.isoformat()}",
        ACCOUNT_DIMENSION_TAG: account,
        "dagster/partition/day": day.isoformat(),
        ACCOUNT_TAG: account,
        TRIGGER_TAG: WATCHER_TRIGGER,
    }


class RunLauncher:
    """`launch(account)`: today's `ingest` run of the account, unless one is already queued."""

    def __init__(self, url: str, today: Callable[[], date], post: Post | None = None) -> None:
        self.url = url.rstrip("/")
        self.today = today
        self._post = post
        self._selector: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()

    def post(self, *args: Any, **kwargs: Any) -> Any:
        if self._post is None:
            import requests

            self._post = requests.post
        return self._post(*args, **kwargs)

    def launch(self, account: str) -> str | None:
        """The new run's id, or None when a run of the partition waiting to start covers the new mail.
        Raises RunRefused (or requests' errors) when the webserver cannot take it."""
        day = self.today()
        if self._selector is None:
            self._selector = job_selector(
                graphql_data(self.post, self.url, LOOKUP, {}), [account], [day]
            )
        tags = partition_tags(account, day)
        queued = graphql_data(
            self.post,
            self.url,
            PENDING,
            {"tags": [{"key": "dagster/partition", "value": tags["dagster/partition"]}]},
        ).get("runsOrError", {})
        if queued.get("results"):
            return None
        params = {
            "selector": self._selector,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        answer = graphql_data(self.post, self.url, LAUNCH_RUN, {"params": params}).get(
            "launchRun", {}
        )
        if answer.get("__typename") != "LaunchRunSuccess":
            self._selector = None  # looked up again next time (a reloaded code location)
            raise RunRefused(refusal(answer))
        run_id: str = answer["run"]["runId"]
        return run_id

    def launch_soon(self, account: str) -> None:
        """`try_launch` on a thread of its own, so the folder's IDLE resumes at once (a change
        reported while no IDLE is active would wait for the sensor's poll). One at a time per
        account: a launch in flight makes a run that has not fetched yet, which covers this."""
        with self._lock:
            if account in self._in_flight:
                return
            self._in_flight.add(account)
        threading.Thread(target=self._launch_then_done, args=(account,), daemon=True).start()

    def _launch_then_done(self, account: str) -> None:
        try:
            self.try_launch(account)
        finally:
            with self._lock:
                self._in_flight.discard(account)

    def try_launch(self, account: str) -> None:
        """`launch`, logging instead of raising: the wake-up written beside it still gets the
        mail in at the sensor's next tick."""
        try:
            run_id = self.launch(account)
        except Exception as error:  # the webserver down or refusing: the sensor takes over
            log.warning(
                "watch %s: could not request today's run from %s (%s); the new-mail sensor will",
                account,
                self.url,
                logs.redact(str(error)),
            )
            return
        if run_id is None:
            log.info("watch %s: today's run is already queued; it will fetch this too", account)
        else:
            log.info("watch %s: requested run %s for today's new mail", account, run_id)
