"""`mail-pipeline backfill`: one run of the `ingest` job per account over a range of days,
launched through the Dagster webserver's GraphQL API (the one its UI uses).

Not `launchPartitionBackfill`: an asset backfill's runs are named `__ASSET_JOB`, and a job
backfill of `ingest` under its single-run policy gives every range run the first partition's
dagster/partition/account and /day tags, which Dagster 1.13 reads as that one partition (each
run stores one day). These are the range runs the new-mail sensor launches (defs/sensors.py).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from datetime import date, timedelta
from typing import Any

from mail_pipeline.runtime.webserver import (
    ACCOUNT_TAG,
    JOB,
    LOOKUP,
    TRIGGER_TAG,
    Post,
    RunRefused,
    graphql_data,
    job_selector,
    refusal,
)
from mail_pipeline.settings import Settings

BACKFILL_TAG = (
    "mail_pipeline/backfill"  # groups one command's runs (the UI's Runs page filters by tag)
)

LAUNCH = """
mutation($runs: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $runs) {
    __typename
    ... on LaunchMultipleRunsResult {
      launchMultipleRunsResult {
        __typename
        ... on LaunchRunSuccess { run { runId } }
        ... on RunConfigValidationInvalid { errors { message } }
        ... on Error { message }
      }
    }
    ... on PythonError { message }
  }
}"""


def check(args: argparse.Namespace, settings: Settings) -> None:
    """Accounts the registry knows and days the partitions hold, named when they are not."""
    from mail_pipeline.cli import preflight
    from mail_pipeline.storage.accounts import check_accounts

    window = settings.window
    preflight.check_days(
        args.first, args.last, window.cutoff(), window.today(), settings.retention_days
    )
    check_accounts(args.account, set(settings.registry().load()))


def run_params(
    selector: dict[str, Any], accounts: list[str], first: date, last: date, backfill_id: str
) -> list[dict[str, Any]]:
    """One range run per account: one process, one IMAP login and one model load for all its days."""
    from mail_pipeline.defs.partitions import partition_key

    def tags(account: str) -> list[dict[str, Any]]:
        return [
            {"key": k, "value": v}
            for k, v in {
                "dagster/asset_partition_range_start": str(partition_key(account, first)),
                "dagster/asset_partition_range_end": str(partition_key(account, last)),
                ACCOUNT_TAG: account,
                TRIGGER_TAG: "cli_backfill",
                BACKFILL_TAG: backfill_id,
            }.items()
        ]

    return [
        {"selector": selector, "executionMetadata": {"tags": tags(account)}} for account in accounts
    ]


def launch(
    url: str, accounts: list[str], first: date, last: date, post: Post
) -> tuple[str, list[str]]:
    """Launch the runs; the backfill's id and its run ids. Raises RunRefused."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    selector = job_selector(graphql_data(post, url, LOOKUP, {}), accounts, days)
    backfill_id = secrets.token_hex(4)
    result = graphql_data(
        post, url, LAUNCH, {"runs": run_params(selector, accounts, first, last, backfill_id)}
    )
    answer = result.get("launchMultipleRuns") or {}
    if answer.get("__typename") != "LaunchMultipleRunsResult":
        raise RunRefused(refusal(answer))
    launched, refused = [], []
    for account, run in zip(accounts, answer["launchMultipleRunsResult"]):
        if run["__typename"] == "LaunchRunSuccess":
            launched.append(run["run"]["runId"])
        else:
            refused.append(f"{account}: {refusal(run)}")
    if refused:
        raise RunRefused(
            "; ".join(refused) + (f" (launched: {', '.join(launched)})" if launched else "")
        )
    return backfill_id, launched


def runs_url(url: str, backfill_id: str) -> str:
    """The UI's run list filtered to this backfill's runs (its filter tokens, as its search box writes them)."""
    from urllib.parse import urlencode

    return f"{url}/runs?{urlencode([('q[]', f'tag:{BACKFILL_TAG}={backfill_id}')])}"


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    import requests

    check(args, settings)
    url = (args.url or f"http://127.0.0.1:{settings.ui_port}").rstrip("/")
    try:
        backfill_id, runs = launch(url, args.account, args.first, args.last, requests.post)
    except requests.ConnectionError:
        print(
            f"error: no Dagster webserver at {url}; start it with `make run` (or pass --url)",
            file=sys.stderr,
        )
        return 2
    except RunRefused as error:
        print(f"error: backfill refused: {error}", file=sys.stderr)
        return 2
    days = (args.last - args.first).days + 1
    print(
        f"backfill {backfill_id} launched: {len(args.account) * days} partitions, one `{JOB}` run per account "
        f"({len(runs)}); follow it at {runs_url(url, backfill_id)}"
    )
    for account, run_id in zip(args.account, runs):
        print(f"  {account}: {url}/runs/{run_id}")
    return 0
