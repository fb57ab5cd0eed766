"""Figures: ``python -m update_equivalence.report RUNS OUT.png`` plots exact exploitability against
the step size per game (the uniform blueprint as a line, greedy with each tie-breaking rule as points)."""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from shared.results import find_runs


def plot_exploitability(runs: list[dict], out: str | Path) -> list[str]:
    """One panel per game of the exact study; returns the games plotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = defaultdict(list)
    for r in runs:
        if r["config"]["study"] == "exact":
            by[r["config"]["game"]].append(r)
    games = sorted(by)
    if not games:
        raise ValueError("no exact-study runs to plot")
    fig, axes = plt.subplots(1, len(games), figsize=(3.4 * len(games), 3.0), squeeze=False)
    for ax, game in zip(axes[0], games):
        rs = by[game]
        base = rs[0]["metrics"]["blueprint/exploitability"]
        md = [r for r in rs
              if r["config"]["method"]["name"] != "greedy" and r["config"]["method"]["tie_break"] == "uniform"]
        finite = sorted((float(r["config"]["method"]["eta"]), r["metrics"]["search/exploitability"]) for r in md
                        if np.isfinite(float(r["config"]["method"]["eta"])))
        if finite:
            ax.plot(*zip(*finite), "o-", label="MMD search (uniform blueprint)")
        ax.axhline(base, color="gray", ls="--", label="blueprint")
        for r in rs:
            m = r["config"]["method"]
            if m["name"] == "greedy" or not np.isfinite(float(m["eta"])):
                tb = m["tie_break"]
                ax.axhline(r["metrics"]["search/exploitability"], color="C3" if tb == "uniform" else "C1", ls=":",
                           label=f"greedy (ties: {tb})")
        ax.set_xscale("log")
        ax.set_title(game.replace("(", "\n("), fontsize=8)
        ax.set_xlabel("step size eta")
        ax.set_ylabel("exploitability")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(), loc="lower center", ncol=4,
               fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return games


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m update_equivalence.report RUNS_DIR OUT.png")
    print("plotted:", plot_exploitability(find_runs(sys.argv[1]), sys.argv[2]))
