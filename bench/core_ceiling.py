"""`python -m bench.core_ceiling [--texts 400]`: what a second core gives this machine's embedding,
with no Dagster, broker or store around it: the same texts encoded by one process pinned to core
0 alone, then by two processes at once pinned to cores 0 and 1 (each with the model loaded and
warmed before a common start). The ceiling is 2 x the lone process's time over the pair's wall
time: the most the scaleout section's `scaleout_2workers_vs_1` could reach on this machine, since
its two workers do the same encoding with the rest of the stack sharing their cores. Printed only.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys

from bench.machine import describe

CORES = ("0", "1")
WORDS = [
    "invoice",
    "quarterly",
    "budget",
    "meeting",
    "agenda",
    "schedule",
    "review",
    "contract",
    "shipment",
    "delivery",
    "customer",
    "project",
    "deadline",
    "report",
    "summary",
    "proposal",
    "approval",
    "request",
    "update",
    "status",
    "team",
    "travel",
    "hotel",
    "flight",
    "conference",
    "payment",
    "account",
    "balance",
    "transfer",
    "reminder",
    "follow-up",
    "question",
    "answer",
    "draft",
    "attached",
    "document",
    "spreadsheet",
    "numbers",
    "forecast",
    "revenue",
    "expenses",
    "office",
    "lunch",
    "weekend",
    "holiday",
]

# The child: load and warm the shipped embedder, say so, wait for the start, time one encode.
CHILD = """
import sys, time
from mail_pipeline.indexing.embedder import shared_embedder
from mail_pipeline.settings import Settings
texts = sys.stdin.readline().rstrip("\\n").split("\\x1f")
model = shared_embedder(*Settings().embedder_config)
model.encode(texts[:8])
print("ready", flush=True)
sys.stdin.readline()
started = time.perf_counter()
model.encode(texts)
print(time.perf_counter() - started, flush=True)
"""


def texts(count: int, seed: int = 0) -> list[str]:
    """Mail-like texts of 120–200 words: the encoder's cost is in their token count."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(120, 200))) for _ in range(count)]


def encode_at_once(cores: tuple[str, ...], sample: list[str]) -> list[float]:
    """Seconds each process pinned to one of `cores` took to encode `sample`, started together."""
    children = [
        subprocess.Popen(
            ["taskset", "-c", core, sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for core in cores
    ]
    for child in children:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("\x1f".join(sample) + "\n")
        child.stdin.flush()
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("an encoding process did not start")
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    seconds = []
    for child in children:
        assert child.stdout is not None
        seconds.append(float(child.stdout.readline()))
        child.wait(timeout=60)
    return seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.core_ceiling")
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    sample = texts(args.texts)
    load_before = os.getloadavg()[0]
    alone, pair = [], []
    for _ in range(args.rounds):  # alternating, each case's best round kept
        alone.append(encode_at_once(CORES[:1], sample)[0])
        pair.append(max(encode_at_once(CORES, sample)))
    one, two = min(alone), min(pair)
    print(f"{describe()}; load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"one process on core 0 alone: {one:.1f} s for {len(sample)} texts")
    print(f"two processes on cores 0 and 1 at once: {two:.1f} s (wall, the slower of the two)")
    print(f"ceiling for 2 workers vs 1: {2 * one / two:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
