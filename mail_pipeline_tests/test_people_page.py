"""The search page in Chromium over the known mailbox: an operator query lists exactly its mail,
newest first; a click on a sender's name shows that person's mail and threads; the digest view
lists the day's threads awaiting a reply, and a digest's link opens its email."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from mail_pipeline_tests.indexed_demo import search_service
from mail_pipeline_tests.known_mailbox import FIRST_DAY, where
from mail_pipeline_tests.test_digest import expected
from mail_pipeline_tests.test_search_page import browser  # noqa: F401  (the apt Chromium, shared)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def numbers_shown(texts: list[str]) -> list[int]:
    return [int(re.search(r"m(\d+)", text).group(1)) for text in texts]


@pytest.fixture(scope="module")
def service(known_mail, tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("people-page")
    with search_service(known_mail.data_dir, cwd=root) as url:
        yield url


@pytest.fixture
def page(browser, service):
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(service)
    yield page
    context.close()
    assert not errors, errors


def test_an_operator_query_lists_its_mail_newest_first(page):
    page.fill("#q", "from:anna is:read")
    page.click("#search button[type=submit]")
    page.wait_for_function("document.querySelector('#status').textContent.includes('result')")
    shown = numbers_shown(page.locator("#results .hit .subject").all_text_contents())
    assert set(shown) == where("anna") & where("seen")
    assert len(shown) == len(set(shown))


def test_a_click_on_a_sender_shows_their_mail_and_threads(page):
    page.fill("#q", "from:anna")
    page.click("#search button[type=submit]")
    page.wait_for_function("document.querySelector('#status').textContent.includes('result')")
    page.locator("#results .hit .sender").first.click()
    page.wait_for_selector("#person:not([hidden]) #person-emails li")
    assert page.text_content("#person-name") == "Anna Berg"
    assert "anna@acme.test" in page.text_content("#person-facts")
    mail = numbers_shown(page.locator("#person-emails li").all_text_contents())
    assert set(mail) == where("anna") | where("owner")  # from her, and the owner's to her
    threads = page.locator("#person-threads li").all_text_contents()
    assert len(threads) == len(where("anna")) + len(where("owner")) - 1  # 9 answers 6, both hers
    assert page.is_hidden("#detail")


def test_the_digest_view_lists_what_awaits_a_reply(page):
    from playwright.sync_api import expect

    day = (FIRST_DAY + timedelta(days=1)).date()
    page.fill("#until", day.isoformat())
    page.click("#show-digest")
    page.wait_for_selector("#digest:not([hidden])")
    awaiting = page.locator("ul[data-section=awaiting_reply] .subject").all_text_contents()
    assert set(numbers_shown(awaiting)) == expected("awaiting_reply", day)
    page.locator("ul[data-section=awaiting_reply] li").first.click()
    # Waits for the opened email's subject (the pane may show while its fetch is in flight).
    expect(page.locator("#email-subject")).to_have_text(awaiting[0])


def test_a_digest_link_opens_its_email(page, service):
    page.fill("#q", "subject:m04")
    page.click("#search button[type=submit]")
    page.wait_for_selector("#results .hit")
    email_id = page.get_attribute("#results .hit", "data-email-id")
    page.goto(f"{service}/#email={email_id}&account=alice")
    page.wait_for_selector("#detail:not([hidden])")
    assert page.text_content("#email-subject") == "Invoice m04"
