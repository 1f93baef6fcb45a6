"""The search service's reader without a server: input checks, snippet marks, a fresh install."""

from __future__ import annotations

import pytest

from mail_pipeline.service.reader import (
    MailReader,
    NothingIndexedError,
    RequestError,
    mark_spans,
    parse_day,
    parse_k,
)
from mail_pipeline.settings import Settings


@pytest.mark.parametrize(
    ("text", "query", "marked"),
    [
        ("Invoice INV-7 is overdue", "invoice overdue", ["Invoice", "overdue"]),
        ("two invoices were paid", "invoice", ["invoices"]),
        ("the cat and the hat", "the cat", ["cat"]),  # common words are not marked
        ("Zürich office, zurich team", "Zürich", ["Zürich"]),
        ("nothing here", "budget", []),
    ],
)
def test_snippet_marks_cover_the_query_words(text, query, marked):
    assert [text[start:end] for start, end in mark_spans(text, query)] == marked


@pytest.mark.parametrize("value", ["0", "101", "-3", "ten", "2.5"])
def test_k_outside_1_to_100_is_refused(value):
    with pytest.raises(RequestError, match="k must be"):
        parse_k(value)


def test_dates_parse_or_name_the_bad_value():
    assert str(parse_day("2026-11-18", "since")) == "2026-11-18" and parse_day("", "since") is None
    with pytest.raises(RequestError, match="until must be a date YYYY-MM-DD, not '18/11/2026'"):
        parse_day("18/11/2026", "until")


def test_a_fresh_data_directory_answers_empty_not_broken(tmp_path):
    reader = MailReader(Settings(data_dir=tmp_path / "data"))
    assert reader.accounts() == [] and reader.sync_status() == []
    with pytest.raises(NothingIndexedError, match="nothing indexed yet"):
        reader.search("invoice", mode="text")
    with pytest.raises(RequestError, match=r"unknown account 'work'; known accounts: none yet"):
        reader.search("invoice", mode="text", account="work")


@pytest.mark.parametrize(
    ("query", "mode", "message"),
    [
        ("   ", "text", "the query is empty"),
        ("invoice", "fuzzy", "mode must be one of hybrid, vector, text, not 'fuzzy'"),
    ],
)
def test_search_refuses_what_it_cannot_answer(tmp_path, query, mode, message):
    with pytest.raises(RequestError, match=message):
        MailReader(Settings(data_dir=tmp_path)).search(query, mode=mode)
