"""Figures: perplexity by method and setting (mean ± std over calibration seeds), and the paper's motivation,
the distribution of input-channel norms ||X_j|| per linear type (outlier channels make |W| a poor proxy).

    python -m wanda.report outputs/mini results/mini          # writes results/mini_ppl.png
    python -m wanda.report --norms results/mini_norms.png      # channel norms of the cached tiny model
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from shared.results import aggregate, find_runs
from wanda.prune import block_statistics, capture_block_inputs, find_blocks

METHOD_ORDER = ["dense", "magnitude", "magnitude_row", "wanda_layer", "wanda", "sparsegpt", "wanda_variant",
                "wanda_owl"]
SETTING_ORDER = ["u50", "u60", "u70", "u80", "nm48", "nm24"]


@torch.no_grad()
def channel_norms(model, calib: torch.Tensor, batch_size: int = 8) -> dict[str, list[np.ndarray]]:
    """||X_j||_2 over all calibration tokens for every linear of the dense model, grouped by linear type
    (q_proj, ..., down_proj), one array per block."""
    _, blocks = find_blocks(model)
    device = next(model.parameters()).device
    inps, kws = capture_block_inputs(model, blocks, calib, batch_size)
    out: dict[str, list[np.ndarray]] = {}
    for block in blocks:
        stats, inps = block_statistics(block, inps, kws, device)  # dense outputs feed the next block
        for name, st in stats.items():
            out.setdefault(name.split(".")[-1], []).append(st.sq.sqrt().cpu().numpy())
    return out


def plot_norms(norms: dict[str, list[np.ndarray]], out: str | Path) -> Path:
    """Box plots of ||X_j|| / median per linear type and block, with the max/median ratio printed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(norms)
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 3.4), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        data = [v / np.median(v) for v in norms[name]]
        ax.boxplot(data, whis=(0, 100))
        ax.set_yscale("log")
        ax.set_title(f"{name}\nmax/median {max(d.max() for d in data):.1f}", fontsize=9)
        ax.set_xlabel("block")
    np.atleast_1d(axes)[0].set_ylabel("input-channel norm / median")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_ppl(runs_root: str | Path, out: str | Path) -> Path:
    """Grouped bars: test perplexity per setting (x) and method (colour), mean ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(find_runs(runs_root), ["model.name", "method.name", "setting.name"], ["test/ppl"])
    if not agg:
        raise FileNotFoundError(f"no finished runs under {runs_root}")
    settings = [s for s in SETTING_ORDER if any(k[2] == s for k in agg)]
    methods = [m for m in METHOD_ORDER if any(k[1] == m for k in agg)]
    model = sorted({k[0] for k in agg})[0]
    fig, ax = plt.subplots(figsize=(1.6 * len(settings) + 2, 3.8))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        vals = [agg.get((model, m, s), {}).get("test/ppl") for s in settings]
        ax.bar(np.arange(len(settings)) + i * width, [v.mean if v else np.nan for v in vals], width,
               yerr=[v.std if v else 0 for v in vals], label=m, capsize=2)
    ax.set_xticks(np.arange(len(settings)) + 0.4 - width / 2, settings)
    ax.set_ylabel("held-out perplexity (lower is better)")
    ax.set_title(f"{model}: pruned perplexity by setting")
    lo = min(a["test/ppl"].mean for a in agg.values())
    ax.set_ylim(lo * 0.95, None)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv=None):
    """CLI: ``runs_root out_prefix`` for the perplexity plot; ``--norms PNG`` for the cached tiny model."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs_root", nargs="?")
    p.add_argument("out_prefix", nargs="?")
    p.add_argument("--norms", default=None, help="PNG path: channel norms of the default tiny model")
    a = p.parse_args(argv)
    if a.runs_root:
        print(plot_ppl(a.runs_root, f"{a.out_prefix}_ppl.png"))
    if a.norms:
        from hydra import compose, initialize_config_dir

        from wanda.pipeline import PROJECT_DIR, build

        with initialize_config_dir(config_dir=str(PROJECT_DIR / "configs"), version_base="1.3"):
            cfg = compose("train", overrides=["progress=false"])
        model, _, calib, _, _ = build(cfg, torch.device("cpu"))
        print(plot_norms(channel_norms(model, calib), a.norms))


if __name__ == "__main__":
    main()
