"""Figures: ``python -m epac.report RUNS OUT_PREFIX`` draws ``OUT_PREFIX_learn.png`` (test MSE and constraint
satisfaction against the number of labels, every learner and task variant, mean ± sample std over seeds) and
``OUT_PREFIX_rademacher.png`` (the cone class's complexity against alpha, closed form and sin(alpha) x
unconstrained; the two-layer Monte Carlo)."""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from shared.results import find_runs

ORDER = ("supervised", "penalty_labeled", "penalty", "augmented_lagrangian", "variational")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning(runs: list[dict], out: str | Path) -> list[str]:
    """Two panels: test error and satisfaction vs labels; returns the methods drawn."""
    by = defaultdict(lambda: defaultdict(list))
    variants = set()
    for r in runs:
        c = r["config"]
        if c["study"] == "learn":
            d = c["data"]
            v = f"{d['source']} {d['kind']} k={d['k']} noise={d['expl_noise']}"
            variants.add(v)
            by[(c["method"]["name"], v)][d["n_labeled"]].append(r["metrics"])
    methods = sorted(by, key=lambda mv: (ORDER.index(mv[0]) if mv[0] in ORDER else 99, mv[1]))
    if not methods:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for m in methods:
        ns = sorted(by[m])
        label = m[0] if len(variants) == 1 else f"{m[0]} ({m[1]})"  # one line per task variant
        for ax, key in zip(axes, ("test/error", "test/satisfaction")):
            vals = [np.array([x[key] for x in by[m][n]]) for n in ns]
            std = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in vals]  # sample std, as the results tables
            ax.errorbar(ns, [v.mean() for v in vals], std, marker="o", capsize=3, label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="labeled points n", ylabel="test error (MSE)")
    axes[1].set(xscale="log", xlabel="labeled points n", ylabel="test points satisfying the constraint")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return sorted({m for m, _ in methods}, key=lambda m: ORDER.index(m) if m in ORDER else 99)


def plot_rademacher(runs: list[dict], out: str | Path) -> bool:
    def pick(kind):  # (alpha, metrics); several seeds at one alpha are drawn as separate points
        return sorted(((r["config"]["rademacher"]["alpha"], r["metrics"]) for r in runs
                       if r["config"]["study"] == "rademacher" and r["config"]["rademacher"]["kind"] == kind),
                      key=lambda t: t[0])

    lin, two = pick("linear"), pick("twolayer")
    if not lin and not two:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    if lin:
        a = [x for x, _ in lin]
        axes[0].plot(a, [m["rad/closed_form"] for _, m in lin], "o-", label="closed-form sup, MC over signs")
        axes[0].plot(a, [m["rad/sin_alpha"] for _, m in lin], "--", label="sin(alpha) x unconstrained")
        axes[0].axhline(lin[0][1]["rad/unconstrained"], color="gray", ls=":", label="unconstrained")
        axes[0].set(xlabel="cone half-angle alpha (rad)", ylabel="empirical Rademacher", title="linear, d = n = 50")
        axes[0].legend(fontsize=7)
    if two:
        axes[1].plot([x for x, _ in two], [m["rad/twolayer_mc"] for _, m in two], "o-", label="constrained")
        axes[1].axhline(two[0][1]["rad/twolayer_unconstrained"], color="gray", ls=":", label="all sampled nets")
        axes[1].set(xscale="log", xlabel="constraint level alpha on phi_U", ylabel="Monte Carlo (lower bound)",
                    title="two-layer ReLU, sampled nets")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def main(root: str, prefix: str) -> None:
    runs = find_runs(root)
    drawn = plot_learning(runs, f"{prefix}_learn.png")
    rad = plot_rademacher(runs, f"{prefix}_rademacher.png")
    if not drawn and not rad:
        raise SystemExit(f"no epac runs under {root}: run `make repro-epac` first")
    print(f"wrote {prefix}_learn.png ({', '.join(drawn)})" + (f" and {prefix}_rademacher.png" if rad else ""))


if __name__ == "__main__":
    main(*sys.argv[1:3])
