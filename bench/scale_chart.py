"""The scale section's chart: cost per message (µs/msg) against N, log–log, one line per stage,
so a stage whose cost grows faster than the mail shows as a line that rises."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, figures: dict, ns: list[int], stages: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for stage, what in stages.items():
        costs = [1e6 / figures[f"scale_{stage}_msgs_per_s_{n}"] for n in ns]
        ax.plot(ns, costs, marker="o", label=what)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages in the account (N)")
    ax.set_ylabel("cost per message (µs/msg)")
    ax.set_title("Cost per message against N (flat: grows with the mail; rising: faster)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
