"""The Dagster UI in a real browser (apt Chromium, Playwright) after a multi-day CLI backfill of
the demo mailbox under the real daemon and webserver (`dagster dev`): each day's row count shown
equals that day's count in DuckDB, the checks show Passed per partition, and the run list names
the `ingest` job."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

from mail_pipeline_tests.dagster_process import DagsterDev, wait_until
from mail_pipeline_tests.test_search_page import (  # the apt Chromium, shared
    DOCS_IMAGES,
    browser,  # noqa: F401
)

pytestmark = pytest.mark.e2e
TODAY = date(2026, 11, 20)
MESSAGES, DAYS = 40, 4
# the demo's mail lands on the 4 days before TODAY
END = datetime(2026, 11, 20, tzinfo=UTC)
STAGES = ("raw_messages", "emails", "email_chunks", "email_embeddings")


@dataclass
class Stack:
    url: str
    data_dir: Path
    home: Path
    days: list[date]


def counts_per_day(data_dir: Path, view: str) -> dict[date, int]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return dict(con.execute(f"SELECT day, count(*) FROM {view} GROUP BY day").fetchall())


def busy(instance) -> bool:
    from dagster import DagsterRunStatus, RunsFilter

    statuses = [
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
    ]
    return bool(instance.get_run_records(RunsFilter(statuses=statuses))) or bool(
        [b for b in instance.get_backfills() if b.status.value == "REQUESTED"]
    )


@contextmanager
def backfilled_demo(root: Path) -> Iterator[Stack]:
    """The demo mailbox (inactive, so only the backfill ingests it) under `dagster dev`, backfilled
    over its days with `mail-pipeline backfill`; the environment must name the data directory."""
    from dagster import AssetKey, DagsterInstance

    from mail_pipeline import cli
    from mail_pipeline.cli.pipeline import write_instance_config
    from mail_pipeline.demo import server as demo
    from mail_pipeline.settings import get_settings
    from mail_pipeline.storage.accounts import AccountRegistry

    settings = get_settings()
    days = [TODAY - timedelta(days=i) for i in range(DAYS, 0, -1)]
    mailbox = demo.DemoServer().start()
    server = None
    try:
        mailbox.seed(MESSAGES, end=END, days=DAYS)
        registry = AccountRegistry(settings.accounts_path)
        demo.register_demo_account(registry, mailbox.port)
        # the sensor registers the partition, the backfill ingests
        registry.set_active(demo.DEMO_SLUG, False)
        home = write_instance_config(settings)
        env = {
            k: v for k, v in os.environ.items() if k.startswith(("MAIL_PIPELINE", "FERNET", "HF_"))
        }
        server = DagsterDev(home, env, root / "dagster.log").start()
        with DagsterInstance.from_config(str(home)) as instance:
            wait_until(
                lambda: demo.DEMO_SLUG in instance.get_dynamic_partitions("accounts"),
                90,
                "the demo partition",
            )
            assert (
                cli.main(
                    [
                        "backfill",
                        "--account",
                        demo.DEMO_SLUG,
                        "--from",
                        days[0].isoformat(),
                        "--to",
                        days[-1].isoformat(),
                        "--url",
                        server.url,
                    ]
                )
                == 0
            )
            for stage in STAGES:
                wait_until(
                    lambda stage=stage: (
                        len(instance.get_materialized_partitions(AssetKey(stage))) == DAYS
                    ),
                    300,
                    f"{DAYS} partitions of {stage}",
                )
            wait_until(lambda: not busy(instance), 120, "the backfill to finish")
        yield Stack(server.url, settings.data_dir, home, days)
    finally:
        if server:
            server.stop()
        mailbox.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    from mail_pipeline.storage import crypto

    root = tmp_path_factory.mktemp("dagster-ui")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # no stray .env from the repo root
        patch.setenv(crypto.KEY_VARIABLE, crypto.generate_key())
        patch.setenv("MAIL_PIPELINE_DATA_DIR", str(root / "data"))
        patch.setenv("MAIL_PIPELINE_TODAY", TODAY.isoformat())
        patch.setenv("MAIL_PIPELINE_SENSOR_INTERVAL", "3")
        with backfilled_demo(root) as stack:
            yield stack


@pytest.fixture(scope="module")
def ui_page(browser, stack):
    """One browser tab on the Dagster UI for the module."""
    import requests

    # The UI's "Join the Dagster community" dialog opens a second after a first visit, over
    # whatever is being clicked; this mutation is what its Skip button sends.
    reply = requests.post(
        f"{stack.url}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=30
    )
    assert reply.json().get("data", {}).get("setNuxSeen") is True, reply.text
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture
def ui(ui_page, request, tmp_path):
    """The tab; a screenshot of it lands in the test's tmp dir when the test fails."""
    failed = request.session.testsfailed
    yield ui_page
    if request.session.testsfailed > failed:
        shot = tmp_path / "dagster-ui-failure.png"
        ui_page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot} ({ui_page.url})")


def visit(page, url: str, ready) -> None:
    """Open `url` and wait for `ready` (a locator) to show."""
    page.goto(url)
    ready.filter(
        visible=True
    ).first.wait_for()  # the UI also renders hidden copies of names, to measure them


def metadata_value(page, label: str) -> str:
    """A value of the metadata table on the page (the cell right of `label`)."""
    row = page.locator("tr", has=page.locator("td", has_text=re.compile(f"^{re.escape(label)}$")))
    return row.first.locator("td").nth(1).inner_text().strip()


def test_the_backfill_is_one_ingest_run_and_the_run_list_names_it(stack, ui):
    from dagster import DagsterInstance, RunsFilter

    from mail_pipeline.cli.backfill import BACKFILL_TAG, runs_url

    with DagsterInstance.from_config(str(stack.home)) as instance:
        runs = [
            r.dagster_run
            for r in instance.get_run_records(
                RunsFilter(tags={"mail_pipeline/trigger": "cli_backfill"})
            )
        ]
    assert [run.job_name for run in runs] == [
        "ingest"
    ]  # one run for all the days, named after the job
    visit(ui, f"{stack.url}/runs", ui.get_by_text(runs[0].run_id[:8], exact=True))
    # The run list's Target column links the job by name.
    assert ui.locator("a[href*='/jobs/ingest']").count() == 1
    assert "__ASSET_JOB" not in ui.inner_text("body") and "Success" in ui.inner_text("body")
    # The link the command prints: the run list filtered to the backfill's tag.
    backfill_id = runs[0].tags[BACKFILL_TAG]
    visit(ui, runs_url(stack.url, backfill_id), ui.get_by_text(runs[0].run_id[:8], exact=True))
    # the filter's chip (a run's tag reads "key: value")
    assert f"{BACKFILL_TAG}={backfill_id}" in ui.inner_text("body")


@pytest.mark.parametrize("stage", ["raw_messages", "emails", "email_chunks"])
def test_each_days_row_count_in_the_ui_equals_duckdb(stack, ui, stage):
    expected = counts_per_day(stack.data_dir, stage)
    # days that differ, so a mix-up shows
    assert sorted(expected) == stack.days and len(set(expected.values())) > 1
    shown, jobs = {}, set()
    for day in stack.days:
        key = f"demo|{day.isoformat()}"
        visit(
            ui,
            f"{stack.url}/assets/{stage}?view=partitions&partition={quote(key)}",
            ui.locator("tr", has=ui.locator("td", has_text=re.compile("^dagster/row_count$"))),
        )
        assert ui.get_by_text(key, exact=True).count()  # the panel is this partition's
        shown[day] = int(metadata_value(ui, "dagster/row_count").replace(",", ""))
        # the job that materialized it, linked
        jobs.add(ui.locator("a[href*='/jobs/ingest']").count())
    assert shown == expected
    assert 0 not in jobs


def test_the_checks_show_passed_for_every_backfilled_partition(stack, ui):
    from dagster import AssetCheckKey, DagsterInstance
    from playwright.sync_api import expect

    from mail_pipeline_tests.graph import CHECKS

    keys = [key for check in CHECKS for key in check.check_keys]
    for key in keys:
        asset = key.asset_key.to_user_string()
        visit(ui, f"{stack.url}/assets/{asset}?view=checks", ui.get_by_text(key.name, exact=True))
        ui.get_by_text(
            "Partitions", exact=True
        ).last.click()  # the check's tab (the asset's comes first)
        # The counts fill in once the statuses load: wait for the right one, else fail with what shows.
        expect(ui.get_by_text(re.compile(r"^Passed \(\d+\)$")).first).to_have_text(
            f"Passed ({DAYS})", timeout=30_000
        )
        for status in ("Failed", "Execution Failed", "Skipped", "In Progress"):
            assert ui.get_by_text(f"{status} (0)", exact=True).count(), (key, status)
    # What the page counts, partition by partition: each day's latest result passed and is current.
    with DagsterInstance.from_config(str(stack.home)) as instance:
        for key in keys:
            infos = instance.event_log_storage.get_asset_check_partition_info(
                [AssetCheckKey(key.asset_key, key.name)]
            )
            passed = {
                i.partition_key
                for i in infos
                if i.is_current and i.latest_execution_status.value == "SUCCEEDED"
            }
            assert passed >= {f"demo|{day.isoformat()}" for day in stack.days}, key


REPOSITORIES = (
    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
)


def test_the_asset_graph_shows_every_stage(stack, ui):
    """The `mail` group's lineage, as the docs show it (docs/images/asset-graph.png)."""
    import requests

    reply = requests.post(f"{stack.url}/graphql", json={"query": REPOSITORIES}, timeout=30)
    [repository] = reply.json()["data"]["repositoriesOrError"]["nodes"]
    where = f"{repository['name']}@{repository['location']['name']}"
    visit(
        ui,
        f"{stack.url}/locations/{where}/asset-groups/mail",
        ui.get_by_text("email_embeddings", exact=True),
    )
    for stage in STAGES:
        assert ui.get_by_text(stage, exact=True).filter(visible=True).count(), stage
    ui.wait_for_load_state("networkidle")  # the graph's layout and statuses, before the picture
    ui.screenshot(path=str(DOCS_IMAGES / "asset-graph.png"))
