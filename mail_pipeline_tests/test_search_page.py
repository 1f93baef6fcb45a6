"""The search page in a real browser (Chromium from apt, driven by Playwright): search the demo
mailbox, open an email and its thread, filter by date, and mail content never runs as script."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mail_pipeline_tests.indexed_demo import ATTACHMENT_NAME, HOSTILE_SUBJECT

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
# The documentation's pictures (docs/getting-started.md): retaken by every run, never stale.
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def _chromium() -> str:
    """The apt Chromium, installed when missing (Playwright's own download is unreachable here)."""
    if not os.path.exists(CHROMIUM) and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
            shell=True,
            capture_output=True,
            timeout=900,
        )
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(
                "chromium is required under CI and could not be installed (apt-get install chromium)"
            )
        pytest.skip("chromium is not installed (apt-get install chromium, or `make services`)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, search_service):
    # Without the page's Content-Security-Policy: Playwright's waits evaluate script it forbids,
    # and the page must keep mail content inert by itself (test_search_service checks the header).
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(search_service)
    yield page
    context.close()
    assert not errors, errors


def search(page, query: str, **filters: str) -> list:
    """Type the query (and filters) as a person would, press Enter, wait for the answer."""
    for field, value in filters.items():
        if field in ("mode", "account"):
            page.select_option(f"#{field}", value)
        else:
            page.fill(f"#{field}", value)
    page.fill("#q", query)
    page.evaluate("document.querySelector('#status').textContent = ''")
    page.press("#q", "Enter")
    page.wait_for_function(
        "(s => s && !s.startsWith('Searching'))(document.querySelector('#status').textContent)"
    )
    return page.query_selector_all("#results .hit")


def test_a_query_shows_results_with_sender_date_subject_and_marked_snippet(page):
    hits = search(page, "budget review")
    assert hits
    first = hits[0]
    assert first.query_selector(".sender").text_content().strip()
    assert first.query_selector(".date").text_content().startswith("2026-11-1")
    assert first.query_selector(".subject").text_content().strip()
    marks = [
        mark.text_content().lower()
        for hit in hits
        for mark in hit.query_selector_all(".snippet mark")
    ]
    assert marks and all(mark.startswith(("budg", "revi")) for mark in marks)
    assert page.text_content("#status") == f"{len(hits)} results"
    page.screenshot(path=str(DOCS_IMAGES / "search-page.png"))


def test_opening_a_result_shows_the_email_and_its_thread(page, indexed_demo):
    import duckdb

    with duckdb.connect(str(indexed_demo / "warehouse.duckdb"), read_only=True) as con:
        subject, count = con.execute(
            "SELECT subject, message_count FROM threads ORDER BY message_count DESC, "
            "thread_id LIMIT 1"
        ).fetchone()
    hits = search(page, subject, mode="text")
    target = next(
        hit
        for hit in hits
        if hit.query_selector(".subject").text_content().endswith(subject.removeprefix("Re: "))
    )
    target.click()
    page.wait_for_selector("#thread li")
    assert page.text_content("#email-subject").endswith(subject.removeprefix("Re: "))
    assert page.text_content("#email-body").strip()
    assert "Message-ID" in page.text_content("#email-headers")
    items = page.query_selector_all("#thread li")
    assert len(items) == count and len(page.query_selector_all("#thread li.current")) == 1
    # Another email of the thread opens from the thread list.
    other = next(item for item in items if "current" not in (item.get_attribute("class") or ""))
    other_id = other.get_attribute("data-email-id")
    other.click()
    page.wait_for_function(f"document.querySelector('#detail').dataset.emailId === {other_id!r}")
    page.wait_for_selector(f"#thread li.current[data-email-id='{other_id}']")


def test_the_date_filter_keeps_to_the_days_chosen(page):
    everything = search(page, "meeting", mode="text")
    days = {hit.query_selector(".date").text_content()[:10] for hit in everything}
    assert len(days) > 1
    filtered = search(page, "meeting", mode="text", since="2026-11-18", until="2026-11-18")
    assert filtered and {hit.query_selector(".date").text_content()[:10] for hit in filtered} == {
        "2026-11-18"
    }


def test_a_bad_date_range_is_reported_on_the_page(page):
    assert search(page, "meeting", since="2026-11-19", until="2026-11-18") == []
    assert "since (2026-11-19) is after until (2026-11-18)" in page.text_content("#status")
    assert "error" in page.get_attribute("#status", "class")


def test_mail_content_is_shown_as_text_never_run(page):
    hits = search(page, "gazebo plans")
    assert hits[0].query_selector(".subject").text_content() == HOSTILE_SUBJECT
    hits[0].click()
    page.wait_for_selector("#thread li")
    assert "<script>window.pwned=4</script>" in page.text_content("#email-body")
    assert page.text_content("#email-subject") == HOSTILE_SUBJECT
    assert page.evaluate("window.pwned") is None
    assert (
        page.query_selector_all(
            "#results img, #detail img, #results script, #detail script, #detail b"
        )
        == []
    )


def test_the_account_filter_lists_the_accounts(page):
    page.wait_for_selector("#account option[value='demo']", state="attached")
    assert [o.get_attribute("value") for o in page.query_selector_all("#account option")] == [
        "",
        "demo",
    ]
    assert search(page, "budget", account="demo")


def test_a_hit_from_an_attachment_names_it_and_the_email_lists_it(page):
    hits = search(page, "pergola warranty weather damage")
    assert (
        hits[0].query_selector(".attachment").text_content() == f"in attachment: {ATTACHMENT_NAME}"
    )
    assert "pergola" in hits[0].query_selector(".snippet").text_content()
    hits[0].click()
    page.wait_for_selector("#thread li")
    assert page.text_content("#email-attachments") == f"Attachments: {ATTACHMENT_NAME}"


# -- issue #31: clearing, the no-match note, narrow windows, the favicon ------------------------


def test_a_new_search_clears_the_email_opened_before(page):
    search(page, "gazebo plans")[0].click()
    page.wait_for_selector("#thread li")
    assert search(page, "meeting", mode="text", since="2026-11-18", until="2026-11-18")
    assert page.is_hidden("#detail")
    assert page.text_content("#email-body") == "" and page.query_selector_all("#thread li") == []


def test_a_query_matching_nothing_says_so(page):
    from mail_pipeline.indexing.ranking import NO_MATCH_NOTE

    assert search(page, "zzzzqqqq nonexistentword") == []
    assert page.text_content("#status") == NO_MATCH_NOTE


def test_a_narrow_window_gets_one_column_and_no_sideways_scrolling(page):
    page.set_viewport_size({"width": 400, "height": 800})
    search(page, "gazebo plans")[0].click()
    page.wait_for_selector("#thread li")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 400
    results = page.query_selector("#results-pane").bounding_box()
    detail = page.query_selector("#detail").bounding_box()
    assert detail["y"] >= results["y"] + results["height"]  # below the results, not beside


def test_the_page_has_a_favicon(page, search_service):
    href = page.get_attribute("link[rel=icon]", "href")
    reply = page.request.get(search_service + href)
    assert reply.ok and reply.headers["content-type"].startswith("image/svg+xml")


def test_keys_open_the_next_and_previous_result_and_esc_closes(page):
    hits = search(page, "meeting", mode="text")
    assert len(hits) >= 2
    ids = [hit.get_attribute("data-email-id") for hit in hits]
    page.click("#status")  # out of the search form: keys typed there stay the form's
    page.keyboard.press("j")
    page.wait_for_selector(f"#detail[data-email-id='{ids[0]}']")
    page.keyboard.press("ArrowDown")
    page.wait_for_selector(f"#detail[data-email-id='{ids[1]}']")
    assert page.get_attribute(".hit.selected", "data-email-id") == ids[1]
    page.keyboard.press("k")
    page.wait_for_selector(f"#detail[data-email-id='{ids[0]}']")
    page.keyboard.press("Escape")
    assert page.is_hidden("#detail") and page.query_selector_all(".hit.selected") == []


# -- issue #31: the URL holds the search and the open email; the selection; screen readers -------


def _open_first(page, hits) -> str:
    """Click the first result and wait until its email is open; its id."""
    email_id = hits[0].get_attribute("data-email-id")
    hits[0].click()
    page.wait_for_function(f"document.querySelector('#detail').dataset.emailId === {email_id!r}")
    return email_id


def _shown(page) -> tuple[list[str | None], str | None]:
    """The results' ids and the open email's, once the restored search has answered."""
    page.wait_for_function(
        "(s => s && !s.startsWith('Searching'))(document.querySelector('#status').textContent)"
    )
    ids = [hit.get_attribute("data-email-id") for hit in page.query_selector_all("#results .hit")]
    return ids, page.get_attribute("#detail", "data-email-id")


def test_a_reload_shows_the_same_search_and_open_email(page):
    hits = search(page, "meeting", mode="text", since="2026-11-18")
    ids = [hit.get_attribute("data-email-id") for hit in hits]
    opened = _open_first(page, hits)
    assert "q=meeting" in page.url and f"email={opened}" in page.url
    page.reload()
    page.wait_for_function(f"document.querySelector('#detail').dataset.emailId === {opened!r}")
    assert _shown(page) == (ids, opened)
    assert page.input_value("#q") == "meeting" and page.input_value("#mode") == "text"
    assert page.input_value("#since") == "2026-11-18"
    assert page.get_attribute(".hit.selected", "data-email-id") == opened


def test_back_restores_the_search_before_and_its_open_email(page):
    first = search(page, "budget review")
    first_ids = [hit.get_attribute("data-email-id") for hit in first]
    opened = _open_first(page, first)
    second = search(page, "gazebo plans")
    assert [hit.get_attribute("data-email-id") for hit in second] != first_ids
    page.go_back()
    page.wait_for_function(f"document.querySelector('#detail').dataset.emailId === {opened!r}")
    assert _shown(page) == (first_ids, opened)
    assert page.input_value("#q") == "budget review"
    page.go_back()  # the first search before its email was opened
    page.wait_for_function("document.querySelector('#detail').hidden")
    assert _shown(page) == (first_ids, None)


def test_the_selected_result_follows_the_email_opened_from_the_thread(page, indexed_demo):
    import duckdb

    with duckdb.connect(str(indexed_demo / "warehouse.duckdb"), read_only=True) as con:
        (subject,) = con.execute(
            "SELECT subject FROM threads ORDER BY message_count DESC, thread_id LIMIT 1"
        ).fetchone()
    hits = search(page, subject.removeprefix("Re: "), mode="text")
    listed = {hit.get_attribute("data-email-id") for hit in hits}
    _open_first(page, hits)
    page.wait_for_selector("#thread li.current")
    others = [
        item.get_attribute("data-email-id")
        for item in page.query_selector_all("#thread li:not(.current)")
    ]
    inside = [email_id for email_id in others if email_id in listed]
    assert inside, "the thread's other emails should be among the results"
    page.click(f"#thread li[data-email-id='{inside[0]}']")
    page.wait_for_selector(f".hit.selected[data-email-id='{inside[0]}']")
    assert len(page.query_selector_all(".hit.selected")) == 1
    assert page.get_attribute(".hit.selected", "aria-selected") == "true"
    outside = [email_id for email_id in others if email_id not in listed]
    if outside:  # an email of the thread the results leave out: no result is selected
        page.click(f"#thread li[data-email-id='{outside[0]}']")
        page.wait_for_selector(f"#thread li.current[data-email-id='{outside[0]}']")
        assert page.query_selector_all(".hit.selected") == []


def test_every_control_and_the_results_have_a_name_for_screen_readers(page):
    for role, name in [
        ("searchbox", "Search your mail"),
        ("combobox", "mode"),
        ("combobox", "account"),
        ("checkbox", "hide mail deleted on the server"),
        ("button", "Search"),
        ("button", "Digest"),
    ]:
        assert page.get_by_role(role, name=name).count() == 1, (role, name)
    for name in ("since", "until"):  # date fields: named by their label
        assert page.get_by_label(name, exact=True).count() == 1, name
    assert page.get_attribute("#status", "aria-live") == "polite"
    search(page, "budget review")
    results = page.get_by_role("listbox", name="Results")
    assert results.count() == 1
    options = results.get_by_role("option")
    assert options.count() == len(page.query_selector_all("#results .hit"))
    options.first.click()
    page.wait_for_selector(".hit[aria-selected='true']")
    assert len(page.query_selector_all(".hit[aria-selected='true']")) == 1
