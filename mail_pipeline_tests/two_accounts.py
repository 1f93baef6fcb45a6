"""Two accounts' indexed mail in one data directory, for the tests of access tokens: the demo
mailbox (account `demo`, indexed_demo.py) and the known mailbox (account `alice`,
known_mailbox.py), each built by the real asset graph, then put side by side: their lake
partitions copied, alice's vector rows written through the store, the registries merged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

DEMO, ALICE = "demo", "alice"


def merge(demo_dir: Path, alice_dir: Path, out: Path) -> Path:
    import lancedb

    from mail_pipeline.storage.vectors import VectorStore

    shutil.copytree(demo_dir, out)
    for table in (alice_dir / "lake").iterdir():
        source = table / f"account={ALICE}"
        if source.is_dir():
            shutil.copytree(source, out / "lake" / table.name / f"account={ALICE}")
    chunks = lancedb.connect(str(alice_dir / "lancedb")).open_table(VectorStore.TABLE).to_arrow()
    store = VectorStore(out / "lancedb")
    for day in sorted(set(chunks.column("day").to_pylist())):
        mask = [d == day for d in chunks.column("day").to_pylist()]
        store.replace_partition(ALICE, day, chunks.filter(mask))
    registry = json.loads((out / "accounts.json").read_text())
    registry["accounts"] += json.loads((alice_dir / "accounts.json").read_text())["accounts"]
    (out / "accounts.json").write_text(json.dumps(registry))
    return out
