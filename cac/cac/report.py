"""Mini report: a compact method x objects table, a placement bar plot and a sample grid with the boxes drawn.

    python -m cac.report outputs/mini results      (make -C cac plot; make repro-cac runs it)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from shared.results import find_runs, get_dotted

METHOD_ORDER = ["sd", "cac", "cac_renorm", "cac_per_prompt", "md", "md_cac"]
LABELS = {"sd": "caption only", "cac": "CAC (paper)", "cac_renorm": "CAC renorm (ablation)",
          "cac_per_prompt": "CAC per-prompt (ablation)", "md": "MultiDiffusion", "md_cac": "MD(0.3)+CAC"}
COLS = [("test/mass_in_box", "colour mass in box"), ("chance/mass_in_box", "chance"),
        ("test/in_box", "centroid in box"),
        ("test/present", "present"), ("cost/denoiser_samples_per_image", "denoiser samples / image")]


def collect(runs_dir: str | Path) -> dict:
    """``{(method, n_objects): {metric: [values over seeds]}}`` from the runs' metrics.json."""
    out: dict = {}
    for run in find_runs(runs_dir, scale="mini"):
        key = (get_dotted(run["config"], "method.name"), get_dotted(run["config"], "data.n_objects"))
        for m, v in run["metrics"].items():
            out.setdefault(key, {}).setdefault(m, []).append(float(v))
    return out


def table(res: dict) -> str:
    """Markdown: one row per (objects, method), mean ± std (ddof 1, as shared.results) over seeds."""
    lines = ["| objects | method | " + " | ".join(c for _, c in COLS) + " | seeds |",
             "|---|---|" + "---|" * len(COLS) + "---|"]
    for n in sorted({k[1] for k in res}):
        for meth in [m for m in METHOD_ORDER if (m, n) in res]:
            r = res[(meth, n)]
            cells = [f"{np.mean(r[m]):.3f} ± {np.std(r[m], ddof=1):.3f}" if m != COLS[-1][0] else f"{np.mean(r[m]):.0f}"
                     for m, _ in COLS]
            lines.append(f"| {n} | {LABELS[meth]} | " + " | ".join(cells) + f" | {len(r[COLS[0][0]])} |")
    return "\n".join(lines)


def plot(res: dict, out: Path) -> None:
    """Bars of the in-box colour mass per method (mean ± std over seeds), chance as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({k[1] for k in res})
    fig, axes = plt.subplots(1, len(ns), figsize=(5.5 * len(ns), 3.6), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], ns):
        meths = [m for m in METHOD_ORDER if (m, n) in res]
        vals = [np.mean(res[(m, n)]["test/mass_in_box"]) for m in meths]
        errs = [np.std(res[(m, n)]["test/mass_in_box"], ddof=1) for m in meths]
        colours = ["#888", "#d62728", "#f4a3a3", "#f4a3a3", "#1f77b4", "#9467bd"][:len(meths)]
        ax.bar(range(len(meths)), vals, yerr=errs, color=colours, capsize=3)
        chance = np.mean(res[(meths[0], n)]["chance/mass_in_box"])
        ax.axhline(chance, ls="--", c="k", lw=1, label=f"chance {chance:.2f}")
        ax.set_xticks(range(len(meths)), [LABELS[m] for m in meths], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{n} object{'s' if n > 1 else ''} per image")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("share of the object's colour inside its box")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def samples(toy_path: Path, out: Path, n: int = 8, seed: int = 0, steps: int = 25, guidance: float = 3.0) -> None:
    """One row per method, the same 8 two-object layouts and noise, requested boxes outlined in their colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from cac.mini import generate, sample_layouts
    from cac.toy import PALETTE, ToyPipeline

    pipe = ToyPipeline.load(toy_path)
    s = pipe.unet.arch.size
    colours, boxes = sample_layouts(n, s, 5, 2, torch.Generator().manual_seed(1000 + seed))
    fig, axes = plt.subplots(len(METHOD_ORDER), n, figsize=(1.3 * n, 1.4 * len(METHOD_ORDER)))
    for i, meth in enumerate(METHOD_ORDER):
        img, _ = generate(pipe, meth, colours, boxes, steps, guidance, seed)
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(img[j].permute(1, 2, 0).numpy(), interpolation="nearest")
            for k, c in enumerate(colours[j]):
                x0, y0, x1, y1 = boxes[j, k].tolist()
                ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.5,
                                           ec=tuple((np.array(PALETTE[c]) + 1) / 2)))
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(LABELS[meth], fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("same layouts and noise per column; outlines: where each colour was asked for", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", help="sweep dir of the mini (outputs/mini)")
    ap.add_argument("out_dir", help="where mini_summary.md and the PNGs go (results)")
    ap.add_argument("--toy", default="cache/toy", help="toy model folder for the sample grid ('' = skip)")
    a = ap.parse_args()
    res = collect(a.runs)
    if not res:
        raise SystemExit(f"no completed mini runs under {a.runs}: run `make -C cac mini` first")
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = ("# CAC mini: compact summary (generated by `python -m cac.report outputs/mini results`, "
            "from the runs of `make repro-cac`)\n\n" + table(res) + "\n")
    (out / "mini_summary.md").write_text(text)
    plot(res, out / "mini_placement.png")
    if a.toy:
        samples(Path(a.toy), out / "mini_samples.png")
    print(text)


if __name__ == "__main__":
    main()
