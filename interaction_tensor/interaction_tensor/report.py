"""The mini's GDE figure: test error vs disagreement of every ensemble run under a folder, one colour per
(data, setting), with the GDE line y = x.
    python -m interaction_tensor.report outputs/mini results/mini_gde.png"""
from __future__ import annotations

import sys
from pathlib import Path


def plot_gde(runs_root, out) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shared.results import find_runs

    runs = [r for r in find_runs(runs_root) if "gde/test_error" in r.get("metrics", {})]
    if not runs:
        raise FileNotFoundError(f"no ensemble runs (metrics.json with gde/test_error) under {runs_root}")
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    groups = {}
    for r in runs:
        c = r["config"]
        groups.setdefault(f"{c['data']['name']} / {c['variant']}", []).append(r["metrics"])
    hi = 0.0
    for label, ms in sorted(groups.items()):
        e, d = [m["gde/test_error"] for m in ms], [m["gde/disagreement"] for m in ms]
        ax.scatter(e, d, s=18, label=label)
        hi = max(hi, *e, *d)
    ax.plot([0, hi * 1.1], [0, hi * 1.1], "k:", lw=1, label="GDE: disagreement = error")
    ax.set(xlabel="test error (mean over models)", ylabel="disagreement (mean over pairs)",
           title="GDE in the mini (one point per ensemble)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return len(runs)


if __name__ == "__main__":
    print(f"plotted {plot_gde(sys.argv[1], sys.argv[2])} runs -> {sys.argv[2]}")
