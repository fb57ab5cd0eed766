"""Plots of the results: test KL by method (mean ± std over seeds) for every data setting of a run root.

python -m sinkhorn_flow.report outputs/mini results/mini_kl.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from shared.results import aggregate, find_runs

ORDER = ["sinkhorn", "sinkhorn_predicted", "softmax_b", "softmax", "fixed_ot", "persistence", "independent", "emd"]


def plot_kl(runs_root: str | Path, out: str | Path, metric: str = "test/kl") -> Path:
    """One panel per data.tag: bars of ``metric`` per method (log scale), error bars = std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(find_runs(runs_root), ["data.tag", "method.name"], [metric])
    tags = sorted({k[0] for k in agg})
    if not tags:
        raise FileNotFoundError(f"no finished runs under {runs_root}: run the experiment first")
    fig, axes = plt.subplots(1, len(tags), figsize=(5.5 * len(tags), 3.8), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        methods = [m for m in ORDER if (tag, m) in agg and metric in agg[(tag, m)]]
        means = np.array([agg[(tag, m)][metric].mean for m in methods])
        stds = np.array([agg[(tag, m)][metric].std for m in methods])
        colors = ["tab:red" if m.startswith("sinkhorn") else "tab:blue" if m.startswith("softmax") else "tab:gray"
                  for m in methods]
        ax.bar(range(len(methods)), means, yerr=stds, color=colors, capsize=3)
        ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right")
        ax.set_yscale("log")
        ax.set_title(tag)
        ax.set_ylabel(f"{metric} (lower is better)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(plot_kl(sys.argv[1], sys.argv[2]))
