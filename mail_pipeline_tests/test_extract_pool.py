"""Extraction isolation: a job that hangs, crashes its process or exhausts memory costs its own
attachment a defect; the other jobs are read, by a replacement worker where needed."""

from __future__ import annotations

import os
import signal
import time

from mail_pipeline.extract.documents import extract
from mail_pipeline.extract.kinds import Extracted, ExtractLimits, Job
from mail_pipeline.extract.pool import ExtractionPool, _Worker
from mail_pipeline_tests.attachment_files import pdf

LIMITS = ExtractLimits(timeout_s=3, memory_mb=768)


def misbehave(job: Job, limits: ExtractLimits) -> Extracted:
    """The real extractor, except for jobs named after what a hostile file can do to a reader."""
    if job.name == "hang":
        time.sleep(3600)
    if job.name == "crash":
        os.abort()
    if job.name == "spin":
        while True:
            pass
    if job.name == "hog":
        hoard = bytearray(4 * 1024**3)  # past the worker's address-space limit
        return Extracted(str(len(hoard)))
    return extract(job, limits)


def ok(text: str) -> Job:
    return Job(f"{text}.txt", "text", text.encode())


def test_real_files_are_read_in_a_worker():
    with ExtractionPool(LIMITS) as pool:
        results = pool.run(
            [
                Job("a.pdf", "pdf", pdf("Gearbox warranty until 2029.")),
                ok("plain"),
                Job("b.pdf", "pdf", b"%PDF-1.7 broken"),
            ]
        )
    assert results[0] == Extracted("Gearbox warranty until 2029.") and results[1] == Extracted(
        "plain"
    )
    assert results[2].text == "" and results[2].defects == [
        "unreadable (not a complete PDF: no %%EOF marker)"
    ]


def test_a_hanging_job_times_out_and_its_worker_is_replaced():
    with ExtractionPool(LIMITS, target=misbehave) as pool:
        results = pool.run([ok("before"), Job("hang", "text", b""), ok("after")])
    assert results == [
        Extracted("before"),
        Extracted("", ["timed out after 3 s"]),
        Extracted("after"),
    ]


def test_a_crashing_job_is_a_defect():
    with ExtractionPool(LIMITS, workers=2, target=misbehave) as pool:
        results = pool.run([Job("crash", "text", b""), ok("one"), ok("two"), ok("three")])
    assert results[0] == Extracted("", ["extraction process died (signal 6)"])
    assert results[1:] == [Extracted("one"), Extracted("two"), Extracted("three")]


def test_memory_is_limited_per_worker():
    with ExtractionPool(LIMITS, target=misbehave) as pool:
        results = pool.run([Job("hog", "text", b""), ok("next")])
        worker = pool._idle[0]
    assert results == [Extracted("", ["over the memory limit (768 MB)"]), Extracted("next")]
    assert worker.process.returncode is not None  # closing the pool ended it


def test_no_jobs_start_no_worker():
    with ExtractionPool(LIMITS) as pool:
        assert pool.run([]) == [] and pool._idle == []


def test_an_orphaned_job_spinning_past_its_deadline_is_ended_by_the_kernel():
    """No parent kills this one: the worker's CPU limit does."""
    worker = _Worker(ExtractLimits(timeout_s=1), misbehave)
    worker.conn.send(Job("spin", "text", b""))
    assert worker.process.wait(120) == -signal.SIGXCPU
    worker.kill()
