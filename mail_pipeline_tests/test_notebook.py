"""notebooks/explore.ipynb runs headless on data the real asset graph materialized from Dovecot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# pinned_today is an autouse fixture: imported, it pins MAIL_PIPELINE_TODAY here too.
from mail_pipeline_tests.test_pipeline_e2e import DAYS, pinned_today, run_graph, seed  # noqa: F401

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"


def stdout(notebook, source_part: str) -> str:
    """What the code cell whose source contains `source_part` printed (warnings on stderr left out)."""
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and source_part in c.source]
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")


def test_files_the_notebook_writes_are_ignored_by_git():
    import re
    import subprocess

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    written = set(
        re.findall(
            r'Path\("([^"/]+\.\w+)"\)',
            "".join(c.source for c in notebook.cells if c.cell_type == "code"),
        )
    )
    assert "messages_per_day.png" in written
    for name in written:
        # run from notebooks/ or the root
        for where in (
            NOTEBOOK.parent / name,
            NOTEBOOK.parents[1] / name,
        ):
            done = subprocess.run(
                ["git", "check-ignore", "-q", "--no-index", str(where)], cwd=NOTEBOOK.parent
            )
            assert done.returncode == 0, f"{where} is not ignored by git"


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def execute(workdir: Path, data_dir: Path):
    """The notebook run headless in `workdir` by a python3 kernel of this venv, reading `data_dir`."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    workdir.mkdir()
    env = {**os.environ, "MAIL_PIPELINE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(workdir)}}
    )
    # raises CellExecutionError, naming the cell and its traceback, on any error
    client.execute(env=env)
    return notebook


@pytest.mark.e2e
def test_notebook_runs_before_anything_is_indexed(data_dir, tmp_path):
    from mail_pipeline.settings import get_settings
    from mail_pipeline.storage import catalog
    from mail_pipeline.storage.lake import Lake

    settings = get_settings()
    data_dir.mkdir()
    catalog.ensure_catalog(settings.warehouse_path, Lake(settings.lake_dir))
    notebook = execute(tmp_path / "notebook", data_dir)
    assert "nothing to search yet: nothing indexed yet" in stdout(notebook, "mail_pipeline.search(")
    assert "0 day(s), 0 message(s)" in stdout(notebook, "savefig")


@pytest.mark.integration
@pytest.mark.e2e
def test_notebook_runs_on_a_materialized_lake(dovecot, alice, data_dir, instance, tmp_path):
    seed(dovecot)
    for day in DAYS:
        assert run_graph(instance, day).success

    workdir = tmp_path / "notebook"
    notebook = execute(workdir, data_dir)
    first_hit = stdout(notebook, "mail_pipeline.search(").splitlines()[:3]
    assert (
        first_hit[0].startswith("1. [alice]")
        and first_hit[1].strip() == "Invoice INV-2026-0042 overdue"
    ), first_hit
    assert "2026-11-10" in stdout(notebook, "FROM daily_volume") and "2026-11-12" in stdout(
        notebook, "FROM daily_volume"
    )
    assert "carol@example.test" in stdout(notebook, "FROM top_senders")
    assert "Budget review" in stdout(notebook, "FROM threads")
    assert "3 day(s), 8 message(s)" in stdout(notebook, "savefig")
    assert (workdir / "messages_per_day.png").stat().st_size > 0
