"""Mail deleted on the server (kept with deleted_at under `--on-server-delete keep`) is left out on
request by every way of searching: the service's JSON API through the real HTTP client, the CLI
through the service, and the MCP tool over stdio."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mail_pipeline_tests.conftest import register_user
from mail_pipeline_tests.indexed_demo import cli, environment, search_service
from mail_pipeline_tests.test_search_page import browser  # noqa: F401  (the apt Chromium, shared)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
DAY = datetime(2026, 11, 19, 9, tzinfo=UTC)
WORD = "zqxquokka"  # in both messages, and nowhere else


def build(dovecot, data_dir: Path) -> None:
    """Two messages synced, one then expunged on the server and the day synced again."""
    from dagster import DagsterInstance, materialize

    from mail_pipeline.defs.partitions import partition_key
    from mail_pipeline.defs.resources import build_resources
    from mail_pipeline.settings import get_settings
    from mail_pipeline_tests.graph import CHECKS
    from mail_pipeline_tests.mailgen import message
    from mail_pipeline_tests.test_pipeline_e2e import GRAPH

    register_user(dovecot, data_dir / "accounts.json", on_server_delete="keep")
    dovecot.append(
        [
            (
                "INBOX",
                message(
                    name, DAY, subject=f"The {name} {WORD}", body=f"A {WORD} note ({name}).\r\n"
                ),
                DAY,
            )
            for name in ("kept", "gone")
        ]
    )
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("accounts", ["alice"])

        def sync() -> None:
            result = materialize(
                GRAPH + CHECKS,
                partition_key=partition_key("alice", DAY.date()),
                resources=build_resources(get_settings()),
                instance=instance,
            )
            assert result.success

        sync()
        client = dovecot.client()
        client.select_folder("INBOX")
        gone = [
            uid
            for uid, data in client.fetch(client.search(["ALL"]), ["ENVELOPE"]).items()
            if b"gone" in data[b"ENVELOPE"].subject
        ]
        client.delete_messages(gone)
        client.expunge()
        client.logout()
        sync()


@pytest.fixture(scope="module")
def deleted_mail(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """A data directory where one of two matching emails left the server; a service over it."""
    from mail_pipeline.storage import crypto
    from mail_pipeline_tests.conftest import _server_root, _start
    from mail_pipeline_tests.servers import Dovecot

    root = tmp_path_factory.mktemp("deleted")
    server_root = _server_root("mp-dovecot-")
    dovecot = _start(lambda: Dovecot(server_root))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            patch.setenv(crypto.KEY_VARIABLE, crypto.generate_key())
            patch.setenv("MAIL_PIPELINE_DATA_DIR", str(root / "data"))
            patch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")
            build(dovecot, root / "data")
    finally:
        dovecot.stop()
        shutil.rmtree(server_root, ignore_errors=True)
    with search_service(root / "data", cwd=root) as url:
        yield root / "data", url


def subjects(hits: list[dict]) -> dict[str, bool]:
    """Subject -> whether the hit says it was deleted on the server."""
    return {hit["subject"]: hit["deleted_at"] is not None for hit in hits}


def test_the_json_api_leaves_out_deleted_mail_on_request(deleted_mail):
    from mail_pipeline.service import client

    _data_dir, url = deleted_mail
    query = {"mode": "text", "account": None, "since": None, "until": None, "k": 10}
    assert subjects(client.search(url, WORD, **query)) == {
        f"The kept {WORD}": False,
        f"The gone {WORD}": True,
    }
    assert subjects(client.search(url, WORD, **query, exclude_deleted=True)) == {
        f"The kept {WORD}": False
    }


def test_a_bad_exclude_deleted_value_is_a_400_naming_it(deleted_mail):
    from mail_pipeline.service import client

    _data_dir, url = deleted_mail
    status, answer = client._get(f"{url}/api/search?q={WORD}&exclude_deleted=maybe", 30)
    assert (
        status == 400
        and answer["error"] == "exclude_deleted must be 1 or 0 (true or false), not 'maybe'"
    )


def test_the_cli_through_the_service_leaves_out_deleted_mail(deleted_mail, tmp_path):
    data_dir, url = deleted_mail
    # A model this process cannot load: only the service (with its own, warm) can answer.
    env = environment(
        data_dir,
        MAIL_PIPELINE_SEARCH_PORT=url.rsplit(":", 1)[1],
        MAIL_PIPELINE_EMBEDDING_MODEL=str(tmp_path / "no-model"),
    )
    done = subprocess.run(
        cli("search", WORD, "--json", "--exclude-deleted"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert subjects(json.loads(done.stdout)) == {f"The kept {WORD}": False}


def test_the_mcp_tool_leaves_out_deleted_mail_on_request(deleted_mail, tmp_path):
    from mail_pipeline_tests.test_mcp import payload, session

    data_dir, _url = deleted_mail
    _tools, (every, live) = session(
        data_dir,
        tmp_path,
        [
            ("search_mail", {"query": WORD, "mode": "text"}),
            ("search_mail", {"query": WORD, "mode": "text", "exclude_deleted": True}),
        ],
    )
    assert subjects(payload(every)) == {f"The kept {WORD}": False, f"The gone {WORD}": True}
    assert subjects(payload(live)) == {f"The kept {WORD}": False}


def test_the_page_marks_deleted_mail_and_hides_it_on_request(deleted_mail, browser):
    from mail_pipeline_tests.test_search_page import search

    _data_dir, url = deleted_mail
    # as test_search_page does: Playwright's waits run script
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url)
        shown = {
            hit.query_selector(".subject").text_content(): hit.query_selector(".deleted")
            for hit in search(page, WORD, mode="text")
        }
        assert (
            set(shown) == {f"The kept {WORD}", f"The gone {WORD}"}
            and shown[f"The kept {WORD}"] is None
        )
        assert shown[f"The gone {WORD}"].text_content().startswith("deleted on the server 20")
        page.check("#exclude_deleted")
        assert [
            hit.query_selector(".subject").text_content() for hit in search(page, WORD, mode="text")
        ] == [f"The kept {WORD}"]
    finally:
        context.close()
