"""The Dagster webserver's GraphQL API (the one its UI uses), as `mail-pipeline backfill` and the
watcher ask it for `ingest` runs; and the run tags that Dagster and the run coordinator read.

Plain HTTP: nothing here imports Dagster, so the watcher stays free of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

# requests.post, or a test's stand-in with its signature.
Post = Callable[..., Any]

JOB = "ingest"

# Range runs cannot carry a dagster/partition/account tag (Dagster would read the run as that one
# partition), so every run of one account also carries ACCOUNT_TAG; the run coordinator limits
# runs per account by either (defs/run_coordinator.py, dagster.yaml).
ACCOUNT_TAG = "mail_pipeline/account"
ACCOUNT_DIMENSION_TAG = "dagster/partition/account"
TRIGGER_TAG = "mail_pipeline/trigger"

LOOKUP = """
query {
  repositoriesOrError {
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on Error { message }
  }
  assetNodeOrError(assetKey: {path: ["raw_messages"]}) {
    ... on AssetNode { partitionKeysByDimension { name partitionKeys } }
  }
}"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}"""


class RunRefused(RuntimeError):
    """The webserver cannot run what was asked; the message says why in words."""


def graphql_data(post: Post, url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The answer's `data`; RunRefused when the webserver answers only errors, or not as one."""
    reply = post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    try:
        body = reply.json()
    except ValueError as error:
        raise RunRefused(
            f"{url} did not answer as a Dagster webserver ({reply.status_code})"
        ) from error
    if body.get("errors") and not body.get("data"):
        raise RunRefused("; ".join(e.get("message", "") for e in body["errors"])[:500])
    return body.get("data") or {}


def refusal(answer: dict[str, Any]) -> str:
    """What a launch answer that is not LaunchRunSuccess says, in one line."""
    return (
        answer.get("message")
        or "; ".join(e["message"] for e in answer.get("errors") or [])
        or str(answer)[:500]
    )


def job_selector(lookup: dict[str, Any], accounts: list[str], days: list[date]) -> dict[str, Any]:
    """The `ingest` job's selector from the LOOKUP answer, once the webserver knows every
    account and day asked for."""
    repositories = lookup.get("repositoriesOrError") or {}
    selector = next(
        (
            {
                "repositoryLocationName": repo["location"]["name"],
                "repositoryName": repo["name"],
                "jobName": JOB,
            }
            for repo in repositories.get("nodes") or []
            if any(job["name"] == JOB for job in repo["jobs"])
        ),
        None,
    )
    if selector is None:
        raise RunRefused(
            f"the webserver has no `{JOB}` job: is the mail_pipeline code location loaded? "
            f"(see Deployment in the UI){' ' + repositories['message'] if repositories.get('message') else ''}"
        )
    known = {
        d["name"]: set(d["partitionKeys"])
        for d in (lookup.get("assetNodeOrError") or {}).get("partitionKeysByDimension") or []
    }
    missing = sorted(set(accounts) - known.get("account", set()))
    if missing:
        raise RunRefused(
            f"Dagster does not know account(s) {', '.join(missing)} yet: the new-mail sensor registers "
            "accounts on its next tick (MAIL_PIPELINE_SENSOR_INTERVAL); try again after it"
        )
    outside = [d.isoformat() for d in days if d.isoformat() not in known.get("day", set())]
    if outside:
        raise RunRefused(
            f"the webserver's day partitions do not hold {outside[0]}"
            f"{f' (and {len(outside) - 1} more)' if len(outside) > 1 else ''}: is it running "
            "with the same settings (MAIL_PIPELINE_RETENTION_DAYS, the clock)?"
        )
    return selector
