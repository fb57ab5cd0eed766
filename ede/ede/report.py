"""Fig. 2-style plot of the tabular study: train and test suboptimality per learner (mean +- std over runs).

    python -m ede.report outputs/mini results/mini_fig2.png      (make plot)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from shared.results import find_runs, get_dotted


def plot_fig2(runs: list[dict], path: Path) -> list[str]:
    """One panel per learner (UCB constants of the sweep get their own panels); returns the panel titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(runs, key=lambda r: (get_dotted(r["config"], "method.name"),
                                       get_dotted(r["config"], "method.ucb_c") or 0))
    ncol = min(4, len(runs))
    nrow = -(-len(runs) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.9 * nrow), squeeze=False, sharey=True)
    for ax in axes.flat[len(runs):]:
        ax.set_visible(False)
    titles = []
    for ax, rec in zip(axes.flat, runs):
        m, c = rec["metrics"], rec["config"]
        ep = np.asarray(m["episodes_evaluated"])
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            mu, sd = np.asarray(m[f"{split}/curve_mean"]), np.asarray(m[f"{split}/curve_std"])
            ax.plot(ep, mu, color=color, label=split)
            ax.fill_between(ep, mu - sd, mu + sd, color=color, alpha=0.2)
        name = get_dotted(c, "method.name")
        if name == "ucb":
            title = f"Q-learning, UCB c={get_dotted(c, 'method.ucb_c'):g}"
        else:
            title = {"epsilon": "Q-learning, eps-greedy", "pg": "policy gradient"}[name]
        titles.append(title)
        ax.set_title(f"{title} ({c['runs']} runs)", fontsize=8)
        ax.set_xlabel("episode")
        ax.set_ylim(-0.5, 6)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("suboptimality")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return titles


def main(argv=None) -> int:
    """CLI: plot every finished run under a run root."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs")
    p.add_argument("out")
    a = p.parse_args(argv)
    runs = [r for r in (find_runs(a.runs) if Path(a.runs).exists() else []) if "train/curve_mean" in r["metrics"]]
    if not runs:
        print(f"no finished runs under {a.runs}: run make repro-ede first")
        return 1
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    print("panels:", ", ".join(plot_fig2(runs, Path(a.out))), "->", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
