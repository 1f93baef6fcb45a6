"""The search page with access tokens, in a real browser (Chromium, Playwright): a person signs in
with a token scoped to one account; searching, opening an email and its thread, and typing
another account's email id into the URL never show the other account's mail; a revoked token
sends the page back to the sign-in form at once."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from mail_pipeline.access.tokens import TokenStore
from mail_pipeline_tests.indexed_demo import HOSTILE_SUBJECT, cli, environment, serving
from mail_pipeline_tests.test_search_page import browser, search  # noqa: F401 (a fixture)
from mail_pipeline_tests.two_accounts import ALICE, DEMO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(two_accounts, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("access-page") / "data"
    shutil.copytree(two_accounts, data_dir)
    with serving(cli("serve", "--port", "0"), environment(data_dir), data_dir.parent) as url:
        yield url, data_dir


def demo_email(data_dir) -> tuple[str, str]:
    emails = f"read_parquet('{data_dir}/lake/emails/*/*/*.parquet', hive_partitioning = true)"
    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT email_id, subject FROM {emails} WHERE account = ? AND subject = ?",
            [DEMO, HOSTILE_SUBJECT],
        ).fetchone()
    return row[0], row[1]


@pytest.fixture
def signed_in(browser, served):
    url, data_dir = served
    store = TokenStore(data_dir / "tokens.json")
    _, secret = store.add("alice-page", [ALICE], all_accounts=False, admin=False)
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#signin")
    page.fill("#token", "wrong-token")
    page.click("#signin")
    page.wait_for_selector("text=That token is not valid")
    page.fill("#token", secret)
    page.click("#signin")
    page.wait_for_selector("#account option[value='alice']", state="attached")
    yield page, url, data_dir, store
    context.close()
    if "alice-page" in store.load():
        store.revoke("alice-page")
    assert not errors, errors


def test_the_cookie_is_http_only_and_same_site_strict(signed_in):
    page, _, _, _ = signed_in
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "mail_pipeline_token"
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "mail_pipeline_token" not in page.evaluate("document.cookie")


def test_a_scoped_person_searches_opens_and_threads_only_their_account(signed_in):
    page, _, _, _ = signed_in
    options = page.eval_on_selector_all("#account option", "els => els.map(e => e.value)")
    assert options == ["", ALICE]
    hits = search(page, "invoice", mode="text")
    assert hits
    hits[0].click()
    page.wait_for_selector("#thread li")
    assert ALICE in page.text_content("#email-headers")
    assert DEMO not in page.text_content("#email-headers")
    search(page, "gazebo plans")
    assert HOSTILE_SUBJECT not in page.text_content("#results")


def test_typing_another_accounts_email_id_into_the_url_shows_nothing(signed_in):
    page, url, data_dir, _ = signed_in
    email_id, subject = demo_email(data_dir)
    page.goto(f"{url}/#email={email_id}&account={DEMO}")
    page.wait_for_function(
        "document.querySelector('#status').textContent.includes('unknown account')"
    )
    page.goto(f"{url}/#email={email_id}")
    page.wait_for_function(
        "document.querySelector('#status').textContent.includes('no email with id')"
    )
    assert subject not in page.content()


def test_a_revoked_token_sends_the_page_back_to_sign_in(signed_in):
    page, _, _, store = signed_in
    store.revoke("alice-page")
    page.fill("#q", "invoice")
    page.press("#q", "Enter")
    page.wait_for_selector("#signin")


def test_sign_out_forgets_the_token(signed_in):
    page, _, _, _ = signed_in
    page.click("#signout button")
    page.wait_for_selector("#signin")
    assert page.context.cookies() == []
