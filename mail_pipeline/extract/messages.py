"""From parsed messages to what the `emails` rows hold of their attachments' text: the
`attachment_texts` column and one defect per attachment a limit cut, stopped or refused."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mail_pipeline.extract.kinds import Extracted, ExtractLimits, Job, display_name, kind_of
from mail_pipeline.extract.pool import ExtractionPool
from mail_pipeline.message.parse import Attachment, ParsedEmail, attachment_payloads

# Attachment bytes held for the workers at most (a day's slice of mail can carry many).
BATCH_BYTES = 64 * 1024 * 1024


@dataclass
class AttachmentTexts:
    """One message's `attachment_texts` rows ({index, name, text}) and attachment defects."""

    texts: list[dict[str, Any]] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def add_to(self, row: dict[str, Any]) -> dict[str, Any]:
        """The `emails` row (records.email_row) with these texts and defects."""
        row["attachment_texts"] = self.texts
        row["defects"] = list(dict.fromkeys([*row["defects"], *self.defects]))
        return row


def readable(attachment: Attachment) -> str | None:
    """The extractor kind of an attachment we read text from, else None. Attached messages are
    not read as files: the parser walks into them, and the files they carry are attachments too."""
    if attachment.content_type.startswith("message/"):
        return None
    return kind_of(attachment.filename, attachment.content_type)


def _jobs(
    parsed: ParsedEmail, raw: bytes, limits: ExtractLimits, out: AttachmentTexts
) -> list[tuple[int, str, Job]]:
    """(attachment index, content key, job) for each readable attachment within the size limit."""
    wanted = [
        (index, attachment, kind)
        for index, attachment in enumerate(parsed.attachments)
        if (kind := readable(attachment))
    ]
    if not wanted:
        return []
    try:
        payloads = attachment_payloads(raw)
    except Exception as error:
        out.defects += [
            f"attachment:{display_name(a.filename, a.content_type)}: not extracted ({type(error).__name__})"
            for _, a, _ in wanted
        ]
        return []
    jobs = []
    for index, attachment, kind in wanted:
        name = display_name(attachment.filename, attachment.content_type)
        if not attachment.sha256 or attachment.size > limits.max_bytes:
            out.defects.append(
                f"attachment:{name}: over the size limit ({attachment.size} bytes > {limits.max_bytes})"
            )
            continue
        if index >= len(payloads) or payloads[index][0] != attachment:  # the two walks must agree
            out.defects.append(f"attachment:{name}: not extracted (its part was not found again)")
            continue
        _, data, charset = payloads[index]
        jobs.append(
            (index, f"{attachment.sha256}:{kind}:{charset}", Job(name, kind, data, charset))
        )
    return jobs


def extract_texts(
    messages: Iterable[tuple[ParsedEmail, bytes]], pool: ExtractionPool
) -> list[AttachmentTexts]:
    """For each (parsed, raw) message, in order: its attachments' text and defects. An attachment
    sent in several messages (same bytes) is read once; bytes wait in batches of BATCH_BYTES."""
    outs: list[AttachmentTexts] = []
    wanted: list[tuple[AttachmentTexts, list[tuple[int, str, str]]]] = []
    done: dict[str, Extracted] = {}
    queued: dict[str, Job] = {}
    for parsed, raw in messages:
        outs.append(AttachmentTexts())
        jobs = _jobs(parsed, raw, pool.limits, outs[-1])
        wanted.append((outs[-1], [(index, key, job.name) for index, key, job in jobs]))
        queued.update((key, job) for _, key, job in jobs if key not in done)
        if sum(len(job.data) for job in queued.values()) >= BATCH_BYTES:
            done.update(zip(queued, pool.run(list(queued.values()))))
            queued.clear()
    done.update(zip(queued, pool.run(list(queued.values()))))
    for out, named in wanted:
        _fill(
            out,
            [(index, name, done[key]) for index, key, name in named],
            pool.limits.max_email_chars,
        )
    return outs


def _fill(out: AttachmentTexts, results: list[tuple[int, str, Extracted]], budget: int) -> None:
    """Texts and defects of one email's attachments, in order, the texts cut at `budget` in all."""
    limit = budget
    for index, name, result in results:
        out.defects += [f"attachment:{name}: {reason}" for reason in result.defects]
        text = result.text if result.text.strip() else ""
        if text and budget <= 0:
            out.defects.append(
                f"attachment:{name}: not kept (the email's attachments passed {limit} characters)"
            )
        elif text:
            if len(text) > budget:
                out.defects.append(
                    f"attachment:{name}: text cut at the email's limit of {limit} characters"
                )
            out.texts.append({"index": index, "name": name, "text": text[:budget]})
            budget -= len(text)
