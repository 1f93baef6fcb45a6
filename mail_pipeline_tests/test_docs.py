"""The documentation site (docs/, mkdocs.yml) stays true: it builds offline with no warning, the
Troubleshooting page lists every error message the code can print, and every shell command of the
Getting started and Operating pages is one a named test runs."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "mail_pipeline"
PLACEHOLDER = "…"
# Exceptions whose text reaches a person as written (the CLI prints it, a run fails with it, the
# API answers it), besides every exception class the package defines.
OUTSIDE_CLASSES = {"SystemExit"}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def template(node: ast.expr) -> str | None:
    """A message as text, each value formatted into it written as `…`; None when not literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(part.value) if isinstance(part, ast.Constant) else PLACEHOLDER
            for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = template(node.left), template(node.right)
        return None if left is None or right is None else left + right
    return None


def error_classes(trees: list[ast.Module]) -> set[str]:
    """The package's own exception classes, subclasses of subclasses included."""
    known = {"Exception", "ValueError", "RuntimeError", "LookupError"}
    classes = [n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    found: set[str] = set()
    while True:
        new = {c.name for c in classes if {_name(b) for b in c.bases} & (known | found)} - found
        if not new:
            return found
        found |= new


def _stderr(call: ast.Call) -> bool:
    return any(k.arg == "file" and ast.unparse(k.value) == "sys.stderr" for k in call.keywords)


def printed_messages() -> dict[str, str]:
    """Every literal message the package raises in its own exceptions or prints to stderr,
    normalized, mapped to where it is (file:line)."""
    paths = sorted(PACKAGE.rglob("*.py"))
    trees = [ast.parse(path.read_text()) for path in paths]
    classes = error_classes(trees) | OUTSIDE_CLASSES
    found: dict[str, str] = {}
    for path, tree in zip(paths, trees):
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args):
            name = _name(call.func)
            if name in classes or (name == "print" and _stderr(call)):
                text = template(call.args[0])
                if text and re.search("[a-z]{2}", text):
                    where = f"{path.relative_to(ROOT)}:{call.lineno}"
                    found.setdefault(normalized(text), where)
    return found


def normalized(text: str) -> str:
    return " ".join(text.replace("%%", "%").split())


def string_corpus() -> str:
    """Every string the package writes, formatted values as `…`, one per line."""
    texts = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            text = template(node) if isinstance(node, ast.Constant | ast.JoinedStr) else None
            if text:
                texts.append(normalized(text))
    return "\n".join(texts)


# --- the site -------------------------------------------------------------------------------------


def test_the_site_builds_offline_without_a_warning(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    built = subprocess.run(
        [str(mkdocs), "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    # The benchmark page is bench/RESULTS.md itself, included at build time.
    benchmarks = (tmp_path / "site" / "benchmarks" / "index.html").read_text()
    assert "Fetch: raw_messages vs bare imapclient vs mbsync" in benchmarks


def test_the_pages_show_the_pictures_the_browser_tests_take() -> None:
    for name in ("search-page.png", "asset-graph.png"):
        assert (DOCS / "images" / name).stat().st_size > 10_000, name
        assert f"images/{name}" in (DOCS / "getting-started.md").read_text(), name


# --- troubleshooting ------------------------------------------------------------------------------


def test_every_error_message_is_on_the_troubleshooting_page() -> None:
    page = normalized((DOCS / "troubleshooting.md").read_text())
    missing = {m: where for m, where in printed_messages().items() if m not in page}
    assert not missing, "add these to docs/troubleshooting.md, with cause and fix:\n" + "\n".join(
        f"{where}: {message}" for message, where in missing.items()
    )


def documented_messages() -> list[str]:
    """The message each troubleshooting entry starts with (its first code span)."""
    page = (DOCS / "troubleshooting.md").read_text()
    entries = re.findall(r"^- (``|`)(.+?)\1(?=[ (])", page, re.M | re.S)
    return [normalized(message) for _, message in entries]


def test_every_troubleshooting_entry_is_a_message_the_code_still_has() -> None:
    corpus = string_corpus()
    stale = [
        message
        for message in documented_messages()
        if not all(part.strip() in corpus for part in message.split(PLACEHOLDER))
    ]
    assert len(documented_messages()) > 100 and not stale, stale


# --- the commands of Getting started and Operating ------------------------------------------------

# Each shell command of those pages, as written, and the test that runs it. The list is checked
# both ways: a command the pages gain must be added here, one they lose removed.
RUN_BY = {
    "make run": "test_quickstart.py::test_make_run_reaches_a_searchable_demo",
    "make test": ".ci/run",
    ".venv/bin/mail-pipeline search 'invoice overdue'": (
        "test_pipeline_e2e.py::test_full_pipeline_views_checks_and_search"
    ),
    ".venv/bin/mail-pipeline status": "test_doctor.py::test_status_after_a_sync",
    ".venv/bin/mail-pipeline backfill --account work --from 2026-11-01 --to 2026-11-07": (
        "test_dagster_ui.py::test_the_backfill_is_one_ingest_run_and_the_run_list_names_it"
    ),
    ".venv/bin/mail-pipeline doctor": "test_doctor.py::test_doctor_all_ok_including_the_model",
    ".venv/bin/mail-pipeline repair": (
        "test_repair.py::test_repair_quarantines_lists_the_lost_and_the_next_run_refetches"
    ),
    ".venv/bin/mail-pipeline scrub": "test_integrity.py::test_a_healthy_lake_passes_the_scrub",
}
TASK_PAGES = ("getting-started.md", "operating.md")


def shell_commands(page: str) -> list[list[str]]:
    """The commands of a page's ```sh / ```bash blocks, comments and line continuations undone."""
    blocks = re.findall(r"^```(?:sh|bash)\n(.*?)^```", (DOCS / page).read_text(), re.M | re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [argv for argv in (shlex.split(line, comments=True) for line in lines) if argv]


def documented_commands() -> dict[str, list[str]]:
    return {shlex.join(argv): argv for page in TASK_PAGES for argv in shell_commands(page)}


def test_each_command_of_the_task_pages_is_run_by_a_named_test_and_the_list_is_current() -> None:
    assert set(documented_commands()) == set(RUN_BY)


@pytest.mark.parametrize("command", sorted(RUN_BY))
def test_the_named_test_exists_and_runs_that_command(command: str) -> None:
    from mail_pipeline.cli.main import build_parser

    program, *args = shlex.split(command)
    if RUN_BY[command] == ".ci/run":
        assert command in (ROOT / ".ci" / "run").read_text()
        return
    module, name = RUN_BY[command].split("::")
    tree = ast.parse((ROOT / "mail_pipeline_tests" / module).read_text())
    assert name in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    if Path(program).name == "mail-pipeline":
        build_parser().parse_args(args)  # exits, failing the test, on a flag the CLI lacks
        assert args[0] in strings, (module, args[0])
    else:
        assert {program, args[0]} <= strings, (module, program, args[0])


def cli_commands() -> list[tuple[str, list[str]]]:
    """Every `.venv/bin/mail-pipeline …` command of every page's shell blocks, piped ones too."""
    found = []
    for page in sorted(p.name for p in DOCS.glob("*.md")):
        for argv in shell_commands(page):
            while "|" in argv:
                argv = argv[argv.index("|") + 1 :]
            # A redirection ends the command's own arguments (`> week.html`).
            redirected = [i for i, word in enumerate(argv) if word in {">", ">>", "<", "2>"}]
            argv = argv[: redirected[0]] if redirected else argv
            if argv[0] == ".venv/bin/mail-pipeline":
                found.append((page, argv[1:]))
    return found


def test_every_mail_pipeline_command_in_the_docs_is_one_the_cli_accepts() -> None:
    from mail_pipeline.cli.main import build_parser

    commands = cli_commands()
    assert {page for page, _ in commands} >= {"accounts.md", "searching.md", "operating.md"}
    for page, args in commands:
        try:
            build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{page}: mail-pipeline {shlex.join(args)} is not a valid command")


# --- the notebook views ---------------------------------------------------------------------------


def views_reference(root: Path) -> str:
    """The Notebooks page's list of views and their columns, as the catalog builds them on an
    empty lake under `root` (every view works on an empty lake)."""
    import duckdb

    from mail_pipeline.storage.catalog import ensure_catalog
    from mail_pipeline.storage.lake import Lake

    path = root / "warehouse.duckdb"
    ensure_catalog(path, Lake(root / "lake"))
    with duckdb.connect(str(path), read_only=True) as con:
        views = [
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name"
            ).fetchall()
        ]
        lines = []
        for view in views:
            columns = con.execute(f"DESCRIBE {view}").fetchall()
            lines += [f"### `{view}`", "", "| column | type |", "|---|---|"]
            lines += [f"| `{name}` | `{kind}` |" for name, kind, *_ in columns]
            lines.append("")
    return "\n".join(lines)


def test_the_notebooks_page_lists_every_view_with_its_columns(tmp_path: Path) -> None:
    page = (DOCS / "notebooks.md").read_text()
    assert views_reference(tmp_path) in page, (
        "regenerate the views of docs/notebooks.md: python -m mail_pipeline_tests.test_docs"
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        print(views_reference(Path(root)))
