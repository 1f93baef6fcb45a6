"""results.json (a flat object of named figures, merged across runs) and RESULTS.md, which is
regenerated from it: a table per section and each section's goals, met or not."""

from __future__ import annotations

import json
from pathlib import Path

from bench import mailbox
from bench.sections import SECTIONS, Figure, Section

SYMBOLS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
RESULTS_JSON = "results.json"
RESULTS_MD = "RESULTS.md"
# Strings about the latest run; every other key is a figure.
RUN_KEYS = (
    "n_messages",
    "date",
    "command",
    "machine",
    "load_average_before",
    "load_average_after",
    "python_version",
    "dagster_version",
    "imapclient_version",
    "pyarrow_version",
    "dovecot_version",
    "mbsync_version",
)


def merge(out: Path, new: dict) -> dict:
    """The existing results with `new` written over them: keys from other sections are kept,
    keys no section declares any more (a figure renamed or retired) are dropped, and so are the
    old figures of a section `new` measured again (a run of some of its cases must not show an
    older run's figures under its date)."""
    path = out / RESULTS_JSON
    old = json.loads(path.read_text()) if path.exists() else {}
    # The new run's parameters decide which run-dependent keys are still known.
    known = known_keys({**old, **new})
    remeasured = {
        f.key
        for section in SECTIONS.values()
        if f"{section.name}_date" in new
        for f in section.all_figures(old)
    }
    merged = {k: v for k, v in old.items() if k in known and k not in remeasured}
    merged.update({k: round(v, 3) if isinstance(v, float) else v for k, v in new.items()})
    return merged


def write(out: Path, new: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    results = merge(out, new)
    ordered = {key: results[key] for key in RUN_KEYS if key in results}
    ordered.update(sorted((k, v) for k, v in results.items() if k not in ordered))
    (out / RESULTS_JSON).write_text(json.dumps(ordered, indent=2, ensure_ascii=False) + "\n")
    (out / RESULTS_MD).write_text(render(ordered, out))
    return ordered


def number(value: float, digits: int = 0) -> str:
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def figure_table(figures: tuple[Figure, ...], results: dict) -> list[str]:
    rows = [
        f"| {f.label} | `{f.key}` | {number(results[f.key], f.digits)} | {f.unit} |"
        for f in figures
        if f.key in results
    ]
    if not rows:
        return []
    return ["| measured | key | value | unit |", "|---|---|---:|---|", *rows, ""]


def goal_table(section: Section, results: dict) -> list[str]:
    digits = {f.key: f.digits for f in section.all_figures(results)}
    rows = []
    for goal in section.goals:
        if goal.key not in results:
            continue
        value = results[goal.key]
        places = max(2, len(f"{goal.target:g}".partition(".")[2]))  # 0.999 must not print as 1.00
        target = number(
            goal.target, 0 if float(goal.target).is_integer() and goal.target >= 10 else places
        )
        rows.append(
            f"| {goal.text} | `{goal.key}` = {number(value, digits.get(goal.key, 2))} "
            f"| {SYMBOLS[goal.op]} {target} | {'✓' if goal.met(value) else '✗'} |"
        )
    if not rows:
        return []
    return ["| goal | measured | target | met |", "|---|---|---|:-:|", *rows, ""]


def section_block(section: Section, results: dict, out: Path) -> list[str]:
    lines = [f"## {section.title}", ""]
    when = [
        f"{label} {number(results[key])}"
        for label, key in (
            ("N =", f"{section.name}_n_messages"),
            ("measured", f"{section.name}_date"),
        )
        if key in results
    ]
    load = [results.get(f"{section.name}_load_average_{edge}") for edge in ("before", "after")]
    if None not in load:
        when.append(
            f"1-minute load average {number(load[0], 1)} before, {number(load[1], 1)} after"
        )
    if f"{section.name}_machine" in results:
        when.append(f"on {results[f'{section.name}_machine']}")
    if f"{section.name}_command" in results:
        when.append(f"by `{results[f'{section.name}_command']}`")
    if when:
        lines += [f"_{', '.join(when)}._", ""]
    if section.method:
        lines += [section.method, ""]
    lines += figure_table(section.all_figures(results), results) + goal_table(section, results)
    profile = out / f"profile_{section.name}.md"
    if profile.exists():
        lines += [
            f"Where the time goes (latest profiled run): [{profile.name}]({profile.name}).",
            "",
        ]
    return lines


def known_keys(results: dict) -> set[str]:
    """Every key a section declares, those that depend on the run read from `results`."""
    keys = set(RUN_KEYS) | {f.key for f in mailbox.FIGURES} | {"mailbox_n_messages"}
    for section in SECTIONS.values():
        keys |= {f.key for f in section.all_figures(results)} | {
            f"{section.name}_{suffix}"
            for suffix in (
                "n_messages",
                "date",
                "machine",
                "load_average_before",
                "load_average_after",
                "command",
            )
        }
    return keys


def render(results: dict, out: Path) -> str:
    versions = ", ".join(
        f"{key.removesuffix('_version')} {results[key]}"
        for key in RUN_KEYS
        if key.endswith("_version") and key in results
    )
    lines = [
        "# Benchmark results",
        "",
        "Regenerated from `results.json` by `python -m bench` (`make bench`); edit neither by hand.",
        "",
        f"- Machine: {results.get('machine', '?')}",
        f"- Date of the latest run: {results.get('date', '?')}; 1-minute load average "
        f"{number(results.get('load_average_before', 0), 1)} before it, {number(results.get('load_average_after', 0), 1)} "
        "after (anything else running skews absolute rates; ratios measured side by side much less)",
        f"- Latest command: `{results.get('command', '?')}`",
        f"- Mailbox: N = {number(results.get('n_messages', 0))} synthetic messages "
        f"(`mail_pipeline.demo.synthetic.iter_mailbox`, {mailbox.DAYS} days ending {mailbox.END.date()}, seed 0)",
        f"- Versions: {versions}",
        "",
        "## Mailbox",
        "",
        *(
            [f"_N = {number(results['mailbox_n_messages'])}._", ""]
            if "mailbox_n_messages" in results
            else []
        ),
        *figure_table(mailbox.FIGURES, results),
    ]
    for section in SECTIONS.values():
        if any(f.key in results for f in section.all_figures(results)):
            lines += section_block(section, results, out)
    return "\n".join(lines).rstrip() + "\n"
