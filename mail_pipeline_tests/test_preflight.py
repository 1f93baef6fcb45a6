"""What `run`, `backfill` and `search` check before they start anything, and how they say it."""

from __future__ import annotations

import pathlib
import re
import socket
import subprocess
import sys
from datetime import date

import pytest

from mail_pipeline import cli
from mail_pipeline.cli import preflight
from mail_pipeline.storage import crypto
from mail_pipeline.storage.accounts import Account, AccountRegistry
from mail_pipeline_tests.servers import free_port

TODAY = date(2026, 11, 20)


@pytest.fixture
def busy_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def work(data_dir, monkeypatch):
    """A registry holding one account, and the clock pinned."""
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", TODAY.isoformat())
    AccountRegistry(data_dir / "accounts.json").add(
        Account(
            slug="work",
            email="me@example.test",
            host="127.0.0.1",
            port=1143,
            username="me",
            password_token="",
            security="plain",
        ),
        "pw",
        crypto.load_cipher(),
    )


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_port_free_sees_a_listener(busy_port):
    assert not preflight.port_free(busy_port)
    assert preflight.port_free(free_port())


HOLD_CLAIM = """import sys, time
from mail_pipeline.cli import preflight
preflight.claim_data_dir(sys.argv[1], "http://127.0.0.1:3999")
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def claim_holder(data_dir):
    """Another process that claimed the data directory as `mail-pipeline run` does."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "held\n"
    yield holder
    holder.kill()
    holder.wait()


def test_a_second_run_on_a_claimed_data_dir_stops_before_changing_anything(
    work, data_dir, claim_holder, capsys
):
    registry = (data_dir / "accounts.json").read_bytes()
    code, out = run_cli(capsys, "run", "--port", str(free_port()))
    assert code == 2, out
    assert re.search(
        rf"already in use by `mail-pipeline run` \(pid {claim_holder.pid}, UI http://127\.0\.0\.1:3999\)",
        out,
    )
    assert not pathlib.Path(".env").exists() and not (data_dir / "dagster").exists()
    assert (
        data_dir / "accounts.json"
    ).read_bytes() == registry  # the demo account was not re-pointed
    assert claim_holder.poll() is None


def test_a_claim_whose_holder_was_killed_is_taken_over(data_dir, claim_holder, capsys):
    claim_holder.kill()
    claim_holder.wait()
    claim = preflight.claim_data_dir(data_dir, "http://127.0.0.1:4000")
    try:
        assert (
            f"took over the data directory from `mail-pipeline run` pid {claim_holder.pid}"
            in capsys.readouterr().out
        )
        with pytest.raises(
            preflight.PreflightError, match=r"\(pid \d+, UI http://127\.0\.0\.1:4000\)"
        ):
            preflight.claim_data_dir(data_dir, "http://127.0.0.1:4001")
    finally:
        claim.release()
    preflight.claim_data_dir(
        data_dir, "http://127.0.0.1:4002"
    ).release()  # released: free again, nothing to take over
    assert "took over" not in capsys.readouterr().out


@pytest.mark.parametrize("how", ["--port", "MAIL_PIPELINE_UI_PORT"])
def test_run_refuses_a_busy_ui_port_before_starting_anything(
    data_dir, tmp_path, busy_port, capsys, monkeypatch, how
):
    argv = ["run", "--no-demo"]
    if how == "--port":
        argv += ["--port", str(busy_port)]
    else:
        monkeypatch.setenv("MAIL_PIPELINE_UI_PORT", str(busy_port))
    code, out = run_cli(capsys, *argv)
    assert code == 2
    assert (
        f"port {busy_port} on 127.0.0.1 is already in use" in out
        and "MAIL_PIPELINE_UI_PORT=<port>" in out
    )
    # no key written, no instance, no demo
    assert not (tmp_path / ".env").exists() and not data_dir.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--account", "nosuch", "--from", "2026-11-10", "--to", "2026-11-12"],
            "unknown account 'nosuch'; known accounts: work",
        ),
        (
            [
                "--account",
                "work",
                "--account",
                "x",
                "--account",
                "y",
                "--from",
                "2026-11-10",
                "--to",
                "2026-11-12",
            ],
            "unknown accounts 'x', 'y'; known accounts: work",
        ),
        (
            ["--account", "work", "--from", "2026-11-18", "--to", "2026-11-21"],
            "--to 2026-11-21 is in the future: the last day is today, 2026-11-20 (UTC)",
        ),
        (
            ["--account", "work", "--from", "2026-10-20", "--to", "2026-10-25"],
            "--from 2026-10-20 is before the first day kept, 2026-10-21 (MAIL_PIPELINE_RETENTION_DAYS=30)",
        ),
        (
            ["--account", "work", "--from", "2026-11-12", "--to", "2026-11-10"],
            "--to 2026-11-10 is before --from 2026-11-12",
        ),
    ],
)
def test_backfill_names_the_unknown_account_or_the_day_out_of_range(work, capsys, args, expected):
    # A closed port: the checks answer before any webserver is asked.
    code, out = run_cli(capsys, "backfill", *args, "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 2
    assert f"error: {expected}" in out
    assert "webserver" not in out


def test_backfill_window_follows_the_retention_setting(work, capsys, monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_RETENTION_DAYS", "7")
    code, out = run_cli(
        capsys,
        "backfill",
        "--account",
        "work",
        "--from",
        "2026-11-12",
        "--to",
        "2026-11-13",
        "--url",
        f"http://127.0.0.1:{free_port()}",
    )
    assert (
        code == 2
        and "before the first day kept, 2026-11-13 (MAIL_PIPELINE_RETENTION_DAYS=7)" in out
    )
    code, out = run_cli(
        capsys,
        "backfill",
        "--account",
        "work",
        "--from",
        "2026-11-13",
        "--to",
        "2026-11-20",
        "--url",
        f"http://127.0.0.1:{free_port()}",
    )
    assert code == 2 and "no Dagster webserver" in out  # the range passed the checks


def test_search_names_an_unknown_account(work, capsys):
    code, out = run_cli(capsys, "search", "invoice", "--account", "nosuch")
    assert code == 2
    assert "error: unknown account 'nosuch'; known accounts: work" in out


def test_search_still_knows_a_removed_account_whose_mail_is_stored(work, data_dir, capsys):
    stored = data_dir / "lake" / "emails" / "account=old" / "day=2026-11-19"
    stored.mkdir(parents=True)
    (stored / "part-0.parquet").write_bytes(b"")
    code, out = run_cli(capsys, "search", "invoice", "--account", "old")
    assert "unknown account" not in out
    assert code == 1 and "nothing indexed yet" in out


@pytest.mark.parametrize("document", ["LOOKUP", "LAUNCH"])
def test_the_backfill_documents_are_valid_against_the_webservers_schema(document):
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    from mail_pipeline.cli import backfill

    assert validate(create_schema().graphql_schema, parse(getattr(backfill, document))) == []


DAYS = [date(2026, 11, 19), date(2026, 11, 20)]


def lookup(
    accounts=("work",), days=("2026-11-19", "2026-11-20"), jobs=("ingest", "retention")
) -> dict:
    """A LOOKUP answer as the webserver gives it."""
    return {
        "repositoriesOrError": {
            "nodes": [
                {
                    "name": "__repository__",
                    "location": {"name": "loc"},
                    "jobs": [{"name": j} for j in jobs],
                }
            ]
        },
        "assetNodeOrError": {
            "partitionKeysByDimension": [
                {"name": "account", "partitionKeys": list(accounts)},
                {"name": "day", "partitionKeys": list(days)},
            ]
        },
    }


def test_the_backfill_selects_the_ingest_job():
    from mail_pipeline.runtime.webserver import job_selector

    assert job_selector(lookup(), ["work"], DAYS) == {
        "repositoryLocationName": "loc",
        "repositoryName": "__repository__",
        "jobName": "ingest",
    }


def test_the_backfill_launches_one_range_run_per_account_that_the_account_limit_holds():
    from mail_pipeline.cli.backfill import run_params

    selector = {"jobName": "ingest"}
    runs = run_params(selector, ["work", "home"], DAYS[0], DAYS[1], "b1")
    tags = [{t["key"]: t["value"] for t in run["executionMetadata"]["tags"]} for run in runs]
    assert [run["selector"] for run in runs] == [selector, selector]
    assert tags[1] == {
        "dagster/asset_partition_range_start": "home|2026-11-19",
        "dagster/asset_partition_range_end": "home|2026-11-20",
        "mail_pipeline/account": "home",
        "mail_pipeline/trigger": "cli_backfill",
        "mail_pipeline/backfill": "b1",
    }
    # A dimension tag would make Dagster run only that one partition (see mail_pipeline/cli/backfill.py).
    assert not [key for run in tags for key in run if key.startswith("dagster/partition")]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # A registered account the sensor has not made a partition yet.
        (
            lookup(accounts=("work",)),
            "Dagster does not know account(s) new yet: the new-mail sensor registers accounts",
        ),
        (
            lookup(accounts=("work", "new"), days=("2026-11-20",)),
            "the webserver's day partitions do not hold 2026-11-19:",
        ),
        (lookup(jobs=("retention",)), "the webserver has no `ingest` job"),
        (
            {"repositoriesOrError": {"message": "location failed"}},
            "the webserver has no `ingest` job",
        ),
    ],
)
def test_a_refused_backfill_is_explained(answer, expected):
    from mail_pipeline.runtime.webserver import RunRefused, job_selector

    with pytest.raises(RunRefused, match="^" + re.escape(expected)):
        job_selector(answer, ["new", "work"], DAYS)
