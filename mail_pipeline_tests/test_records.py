"""One emails row per distinct message: copies merge, different messages sharing a Message-ID do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mail_pipeline.message import records
from mail_pipeline.message.parse import parse_message
from mail_pipeline_tests.mime_samples import crlf

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def raw_message(
    body: bytes, *, extra: bytes = b"", subject: bytes = b"Q3 plan", date: bytes = b"09:00:00"
) -> bytes:
    return crlf(
        extra
        + b"From: Dana <dana@example.com>\nTo: team@example.com\nSubject: "
        + subject
        + b"\nDate: Tue, 03 Mar 2026 "
        + date
        + b" +0000\nMessage-ID: <plan@example.com>"
        + b"\nContent-Type: text/plain; charset=utf-8\n\n"
        + body
    )


def rows_of(*copies: tuple[str, bytes]) -> list[dict]:
    rows = []
    for uid, (folder, raw) in enumerate(copies, start=1):
        meta = {
            "flags": ["\\Seen"] if folder == "Archive" else [],
            "internaldate": T0 + timedelta(minutes=uid),
            "folder": folder,
            "uidvalidity": 7,
            "uid": uid,
            "size": len(raw),
            "sha256": f"s{uid}",
        }
        rows.append(records.email_row(parse_message(raw), meta))
    merged, _copies = records.merge_copies(rows)
    records.resolve_threads(merged, {}, {})
    return merged


def test_three_bodies_one_message_id_give_three_rows_in_one_thread():
    bodies = [
        b"Draft: budget is 10k.\n",
        b"Final: budget is 12k, approved.\n",
        b"Correction: 12.5k.\n",
    ]
    rows = rows_of(*(("INBOX", raw_message(body)) for body in bodies))
    assert len(rows) == 3
    assert len({row["email_id"] for row in rows}) == 3
    assert len({row["thread_id"] for row in rows}) == 1
    assert {row["search_text"] for row in rows} == {b.decode().strip() for b in bodies}
    again = rows_of(*(("INBOX", raw_message(body)) for body in reversed(bodies)))
    assert {r["email_id"] for r in again} == {
        r["email_id"] for r in rows
    }  # stable, whatever the order


def test_a_copy_in_two_folders_is_one_row_whatever_headers_the_server_added():
    body = b"The offsite is in Lisbon.\n"
    inbox = raw_message(
        body, extra=b"Received: from mx1 by imap; Tue, 03 Mar 2026 09:00:01 +0000\n"
    )
    archive = raw_message(
        body.replace(b"\n", b"  \n"), extra=b"X-Keywords: $Archived\nStatus: RO\n"
    )
    (row,) = rows_of(("INBOX", inbox), ("Archive", archive))
    assert [loc["folder"] for loc in row["locations"]] == ["Archive", "INBOX"]
    assert row["seen"] and row["received_at"] == T0 + timedelta(minutes=1)


def test_a_list_copy_with_tag_and_footer_is_the_sent_message():
    sent = raw_message(b"Release 2.4 is tagged.\n")
    footer = b"\n_______________________________________________\ndev mailing list\ndev@lists.example.org\n"
    listed = raw_message(b"Release 2.4 is tagged.\n" + footer, subject=b"[dev] Q3 plan")
    (row,) = rows_of(("Sent", sent), ("INBOX", listed))
    assert len(row["locations"]) == 2


def test_same_text_different_attachment_is_another_message():
    def with_attachment(data: bytes) -> bytes:
        return crlf(
            b"From: a@example.com\nMessage-ID: <inv@example.com>\nSubject: invoice\n"
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nAttached.\n"
            b"--b\nContent-Type: application/pdf; name=inv.pdf\n\n" + data + b"\n--b--\n"
        )

    rows = rows_of(
        ("INBOX", with_attachment(b"%PDF-1.4 first")),
        ("INBOX", with_attachment(b"%PDF-1.4 second")),
    )
    assert len({row["email_id"] for row in rows}) == 2


def test_copies_without_a_message_id_merge_too():
    bare = crlf(
        b"From: scanner@example.com\nSubject: Scan 0042\nDate: Tue, 03 Mar 2026 09:00:00 +0000\n\nScanned page.\n"
    )
    (row,) = rows_of(
        ("INBOX", b"Received: from mx1\r\n" + bare),
        ("Archive", b"X-Keywords: $Archived\r\n" + bare),
    )
    assert row["message_id_synthetic"] and len(row["locations"]) == 2


def test_a_resent_notification_with_the_same_id_and_text_is_another_message():
    body = b"Build 4711 passed.\n"
    rows = rows_of(("INBOX", raw_message(body)), ("INBOX", raw_message(body, date=b"10:00:00")))
    assert len({row["email_id"] for row in rows}) == 2
