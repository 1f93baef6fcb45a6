"""Retention with a controllable clock: old days leave the lake, LanceDB's files, the views,
search and the instance; in-window data stays; a second run is a no-op."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, materialize

from mail_pipeline import search
from mail_pipeline.defs.assets.retention import retention
from mail_pipeline.defs.partitions import partition_key
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.settings import get_settings
from mail_pipeline_tests.mailgen import message
from mail_pipeline_tests.test_pipeline_e2e import GRAPH

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
UTC = UTC
END = date(2026, 11, 20)
DAYS = [
    END - timedelta(days=n) for n in (39, 35, 31, 25, 12, 1)
]  # 40 days; the first three fall out
OLD_MARKER = "zqxoldmarker"
NEW_MARKER = "zqxnewmarker"


def marker(day: date) -> str:
    return (
        f"{OLD_MARKER}{day:%m%d}" if day < END - timedelta(days=30) else f"{NEW_MARKER}{day:%m%d}"
    )


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def materialize_day(instance, day: date, monkeypatch):
    # Each partition is materialized while it is current, as in production.
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", day.isoformat())
    result = materialize(
        GRAPH,
        partition_key=partition_key("alice", day),
        resources=build_resources(get_settings()),
        instance=instance,
    )
    assert result.success


def run_retention(instance):
    result = materialize([retention], resources=build_resources(get_settings()), instance=instance)
    assert result.success
    return result.asset_materializations_for_node("retention")[0].metadata


def test_retention_drops_old_days_everywhere(dovecot, alice, data_dir, instance, monkeypatch):
    dovecot.append(
        [
            (
                "INBOX",
                message(
                    f"r{d:%m%d}",
                    datetime(d.year, d.month, d.day, 10, tzinfo=UTC),
                    subject=f"Report {d}",
                    body=f"Weekly numbers, reference {marker(d)}.\r\n",
                ),
                datetime(d.year, d.month, d.day, 10, tzinfo=UTC),
            )
            for d in DAYS
        ]
    )
    instance.add_dynamic_partitions("accounts", ["alice"])
    for day in DAYS:
        materialize_day(instance, day, monkeypatch)
    old_days, new_days = DAYS[:3], DAYS[3:]
    lancedb_dir = data_dir / "lancedb"
    # The marker test means something only if LanceDB's files hold the text uncompressed.
    assert files_containing(lancedb_dir, marker(old_days[0]))

    monkeypatch.setenv("MAIL_PIPELINE_TODAY", END.isoformat())
    metadata = run_retention(instance)
    assert metadata["cutoff"].value == (END - timedelta(days=30)).isoformat()
    assert metadata["vector_rows_deleted"].value >= 3
    assert metadata["partitions_dropped"].value["raw_messages"] == 3

    for day in old_days:
        assert not list((data_dir / "lake").rglob(f"day={day}/*.parquet"))
        assert not files_containing(lancedb_dir, marker(day)), f"{marker(day)} still on disk"
    for day in new_days:
        assert (data_dir / f"lake/emails/account=alice/day={day}/part-0.parquet").exists()

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        for view in ("raw_messages", "emails", "email_chunks"):
            assert (
                con.execute(
                    f"SELECT count(*) FROM {view} WHERE day < ?", [END - timedelta(days=30)]
                ).fetchone()[0]
                == 0
            )
            assert con.execute(f"SELECT count(DISTINCT day) FROM {view}").fetchone()[0] == 3
    assert search(OLD_MARKER + f"{old_days[0]:%m%d}", mode="text") == []
    hits = search(marker(new_days[0]), k=3, mode="text")
    assert hits and hits[0].subject == f"Report {new_days[0]}"
    assert min(h.day for h in search("weekly numbers", k=10)) >= END - timedelta(days=30)

    for stage in ("raw_messages", "emails", "email_chunks", "email_embeddings"):
        materialized = instance.get_materialized_partitions(AssetKey(stage))
        assert materialized == {str(partition_key("alice", d)) for d in new_days}, stage

    again = run_retention(instance)
    assert sum(again["partitions_dropped"].value.values()) == 0
    assert again["vector_rows_deleted"].value == 0


def test_out_of_window_backfill_stores_nothing(dovecot, alice, data_dir, instance, monkeypatch):
    old = END - timedelta(days=45)
    dovecot.append(
        [
            (
                "INBOX",
                message("ancient", datetime(old.year, old.month, old.day, 10, tzinfo=UTC)),
                datetime(old.year, old.month, old.day, 10, tzinfo=UTC),
            )
        ]
    )
    monkeypatch.setenv("MAIL_PIPELINE_TODAY", END.isoformat())
    instance.add_dynamic_partitions("accounts", ["alice"])
    result = materialize(
        GRAPH,
        partition_key=partition_key("alice", old),
        resources=build_resources(get_settings()),
        instance=instance,
    )
    assert result.success
    summary = result.asset_materializations_for_node("raw_messages")[0].metadata["summary"].value
    assert "outside the retention window" in summary
    assert not list((data_dir / "lake").rglob(f"day={old}/*.parquet"))
