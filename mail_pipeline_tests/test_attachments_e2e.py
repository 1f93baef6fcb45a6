"""End to end: attachment text found by `mail-pipeline search`, with the attachment named, and
hostile attachments (corrupt, 200 pages, zip bomb) leaving the rest of their email searchable.
Materializes the real asset graph into a temporary data directory, as test_pipeline_e2e does."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pytest
from dagster import materialize

from mail_pipeline import cli
from mail_pipeline.defs.checks import _unchunked
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline.storage.lake import Lake
from mail_pipeline.storage.schemas import EMAIL_CHUNKS, EMAILS
from mail_pipeline_tests.attachment_files import docx, mail_with_attachments, pdf, zip_bomb_docx
from mail_pipeline_tests.graph import CHECKS, email_chunks, email_embeddings, emails, raw_messages

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
DAY = date(2026, 11, 11)
WHEN = datetime(2026, 11, 11, 9, tzinfo=UTC)
PDF, DOCX = (
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
SENTENCE = "The maintenance window for the Rotterdam turbines moves to 14 February 2027."


@pytest.fixture(autouse=True)
def pinned_today(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", "2026-11-20")


def seed(dovecot) -> None:
    contract = mail_with_attachments(
        "contract",
        WHEN,
        "Service contract, signed copy",
        "Signed copy attached.",
        [
            (
                "service-contract.pdf",
                PDF,
                pdf("Service agreement between Northwind Energy and Globex.", SENTENCE),
            ),
            ("notes.docx", DOCX, docx("Call Dana before the site visit.")),
        ],
    )
    hostile = mail_with_attachments(
        "close",
        WHEN,
        "Quarter close files",
        "Everything for the quarter close is attached.",
        [
            ("broken.pdf", PDF, pdf("never readable")[:400]),
            (
                "ledger.pdf",
                PDF,
                pdf(
                    *["Ledger opening balance for the Harbor Street account is 18,400 EUR."]
                    + [f"Ledger page {n}." for n in range(2, 201)]
                ),
            ),
            ("report.docx", DOCX, zip_bomb_docx()),
            ("summary.docx", DOCX, docx("Revenue from the Oslo branch grew by twelve percent.")),
        ],
    )
    dovecot.append([("INBOX", contract, WHEN), ("INBOX", hostile, WHEN)])


def search(query: str, capsys, k: int = 3) -> list[dict]:
    assert cli.main(["search", query, "--json", "-k", str(k)]) == 0
    return json.loads(capsys.readouterr().out)


def test_attachment_text_is_searchable_and_hostile_files_are_defects(
    dovecot, alice, data_dir, instance, capsys
):
    seed(dovecot)
    instance.add_dynamic_partitions("accounts", ["alice"])
    result = materialize(
        [raw_messages, emails, email_chunks, email_embeddings, *CHECKS],
        partition_key=partition_key("alice", DAY),
        resources=build_resources(get_settings()),
        instance=instance,
    )
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [
        (c.check_name, c.metadata) for c in checks if not c.passed
    ]
    [materialization] = result.asset_materializations_for_node("emails")
    assert materialization.metadata["attachment_texts"].value == 4
    assert materialization.metadata["defects_by_kind"].value.get("attachment") == 3

    hits = search(SENTENCE, capsys)
    assert [(h["subject"], h["attachment"]) for h in hits[:3]].count(
        ("Service contract, signed copy", "service-contract.pdf")
    ) == 1
    assert cli.main(["search", SENTENCE, "-k", "3"]) == 0
    assert "in attachment: service-contract.pdf" in capsys.readouterr().out

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        defects, names = con.execute(
            "SELECT defects, [t.name FOR t IN attachment_texts] FROM emails "
            "WHERE subject = 'Quarter close files'"
        ).fetchone()
        chunk_sources = {
            row[0] for row in con.execute("SELECT attachment FROM email_chunks").fetchall()
        }
    assert names == ["ledger.pdf", "summary.docx"]
    assert [d.split(": ")[0] for d in defects if d.startswith("attachment:")] == [
        "attachment:broken.pdf",
        "attachment:ledger.pdf",
        "attachment:report.docx",
    ]
    assert "attachment:ledger.pdf: page limit (read 100 of 200 pages)" in defects
    assert chunk_sources == {
        None,
        "service-contract.pdf",
        "notes.docx",
        "ledger.pdf",
        "summary.docx",
    }
    # The email with the hostile files is still found by its body and by its good attachments.
    for query, attachment in [
        ("Everything for the quarter close is attached", None),
        ("Revenue from the Oslo branch grew by twelve percent", "summary.docx"),
        ("Harbor Street account opening balance", "ledger.pdf"),
    ]:
        hit = search(query, capsys)[0]
        assert (hit["subject"], hit["attachment"]) == ("Quarter close files", attachment), query


def test_the_chunk_check_names_an_attachment_text_left_unchunked(tmp_path):
    lake = Lake(tmp_path / "lake")
    texts = [{"index": 0, "name": "plan.pdf", "text": "Phase two starts in May."}]
    lake.write_partition(
        "emails",
        "alice",
        DAY,
        pa.Table.from_pylist(
            [
                {
                    "email_id": "e1",
                    "search_text": "See the plan.",
                    "attachment_texts": texts,
                    "defects": [],
                }
            ],
            schema=EMAILS,
        ),
    )
    body_chunk = {
        "chunk_id": "c0",
        "email_id": "e1",
        "ordinal": 0,
        "text": "See the plan.",
        "attachment": None,
    }
    lake.write_partition(
        "email_chunks", "alice", DAY, pa.Table.from_pylist([body_chunk], schema=EMAIL_CHUNKS)
    )
    assert _unchunked(lake, "alice", DAY) == [
        "1 text(s) of emails or attachments with no chunks, e.g. e1 (plan.pdf)"
    ]
    attachment_chunk = {**body_chunk, "chunk_id": "c1", "ordinal": 1, "attachment": "plan.pdf"}
    lake.write_partition(
        "email_chunks",
        "alice",
        DAY,
        pa.Table.from_pylist([body_chunk, attachment_chunk], schema=EMAIL_CHUNKS),
    )
    assert _unchunked(lake, "alice", DAY) == []
