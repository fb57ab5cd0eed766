"""Mini report: one row per filter (what it kept, what its student learned, mean ± std over seeds) and a plot.

    python -m tmars.report outputs/mini results      (make -C tmars plot; make repro-tmars runs it)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from shared.results import find_runs, get_dotted

ORDER = ["no_filter", "clip_score", "tmars", "tmars_rapidocr", "text_match"]
LABELS = {"no_filter": "no filter", "clip_score": "CLIP score", "tmars": "T-MARS (true boxes)",
          "tmars_rapidocr": "T-MARS (rapidocr boxes)", "text_match": "Text-Match (rapidocr text)"}
SHARES = ["clean", "word_only", "shape_word", "shape_other_word", "mislabeled"]


def collect(runs_dir: str | Path) -> dict[str, dict[str, list[float]]]:
    """``{method: {metric: [values over seeds]}}`` from the runs' metrics.json."""
    out: dict = {}
    for run in find_runs(runs_dir, scale="mini"):
        meth = get_dotted(run["config"], "method.name")
        for m, v in run["metrics"].items():
            if isinstance(v, (int, float)):
                out.setdefault(meth, {}).setdefault(m, []).append(float(v))
    return out


def _ms(v: list[float]) -> str:
    return f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else f"{np.mean(v):.3f}"


def table(res: dict) -> str:
    """Markdown: kept subset composition (deterministic per filter) and the students' zero-shot accuracy."""
    lines = ["| filter | kept | share text-only | share mislabeled | kept of image+word | zero-shot, text-free "
             "shapes | zero-shot, words alone | seeds |", "|---|---|---|---|---|---|---|---|"]
    for m in [m for m in ORDER if m in res] + sorted(set(res) - set(ORDER)):
        r = res[m]
        cells = [LABELS.get(m, m), f"{np.mean(r['subset/n']):.0f}", f"{np.mean(r['subset/share_word_only']):.3f}",
                 f"{np.mean(r['subset/share_mislabeled']):.3f}", f"{np.mean(r['subset/kept_shape_word']):.3f}",
                 _ms(r["test/zs_clean"]), _ms(r["test/zs_word_only"]), str(len(r["test/zs_clean"]))]
        lines.append("| " + " | ".join(cells) + " |")
    any_r = next(iter(res.values()))
    if "detector/recall" in any_r:
        lines += ["", f"rapidocr on the pool (64 px images upscaled 3x): recall at IoU 0.5 "
                      f"{any_r['detector/recall'][0]:.3f}, mean best IoU {any_r['detector/mean_iou'][0]:.3f}, "
                      f"false boxes per text-free image {any_r['detector/false_boxes_per_text_free_image'][0]:.3f} "
                      f"({any_r['detector/text_free_images_with_a_box'][0]:.1%} of text-free images got a box)."]
    return "\n".join(lines) + "\n"


def plot(res: dict, path: Path) -> None:
    """Left: composition of each kept subset; right: students' zero-shot accuracy per seed and mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meths = [m for m in ORDER if m in res]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    bottom = np.zeros(len(meths))
    for c in SHARES:
        v = np.array([np.mean(res[m][f"subset/share_{c}"]) for m in meths])
        a.bar(range(len(meths)), v, bottom=bottom, label=c.replace("_", " "))
        bottom += v
    a.set_xticks(range(len(meths)), [LABELS[m] for m in meths], rotation=20, ha="right", fontsize=8)
    a.set_ylabel("share of the kept subset")
    a.set_title("what each filter keeps")
    a.legend(fontsize=7)
    for j, (key, name) in enumerate([("test/zs_clean", "text-free shapes"), ("test/zs_word_only", "words alone")]):
        for i, m in enumerate(meths):
            v = res[m][key]
            x = i + (j - 0.5) * 0.3
            b.scatter([x] * len(v), v, s=12, color=f"C{j}", alpha=0.6, label=name if i == 0 else None)
            b.plot([x - 0.1, x + 0.1], [np.mean(v)] * 2, color=f"C{j}", lw=2)
    b.axhline(0.1, color="grey", ls=":", lw=1, label="chance (10 classes)")
    b.set_xticks(range(len(meths)), [LABELS[m] for m in meths], rotation=20, ha="right", fontsize=8)
    b.set_ylabel("student zero-shot accuracy")
    b.set_title("fresh tiny CLIP per subset, same samples seen")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    """Write <out>/<name>_summary.md and <out>/<name>_filters.png from the runs under <runs>."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs")
    ap.add_argument("out")
    ap.add_argument("--name", default="mini", help="file prefix: <name>_summary.md, <name>_filters.png")
    a = ap.parse_args(argv)
    res = collect(a.runs)
    if not res:
        raise SystemExit(f"no mini runs under {a.runs}: run make -C tmars mini first")
    out = Path(a.out)
    cmd = "make repro-tmars" if a.name == "mini" else f"make -C tmars {a.name.replace('_', '-')}"
    steps = sorted({int(v) for r in res.values() for v in r.get("train/samples_seen", [])})
    md = (f"# T-MARS {a.name}: what each filter keeps and what a student learns from it\n\n"
          f"Generated by `{cmd}` (`python -m tmars.report {a.runs} {a.out} --name {a.name}`); samples seen per "
          f"student: {', '.join(map(str, steps))}.\n\n" + table(res))
    (out / f"{a.name}_summary.md").write_text(md)
    plot(res, out / f"{a.name}_filters.png")
    print(md)


if __name__ == "__main__":
    main()
