"""Fig. 3 / Fig. 4 / Table 1 from finished runs: ``python -m ede.aggregate RUNS_DIR [--out results/paper_fig3.md]``.

Procgen runs (env.kind=procgen) become a [seeds x games] matrix of min-max normalised test returns per method,
summarised by median, IQM, mean and optimality gap with stratified-bootstrap 95% intervals (rliable's protocol,
``ede.metrics.aggregate_with_ci``); a method whose runs do not cover the same games with the same seed count is
reported with what it has and flagged. Crafter runs give the score's mean +- std over seeds. The paper's values
beside ours are read off its figures [R] (spec section 3) and never judged.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from ede.metrics import aggregate_with_ci
from shared.results import find_runs

# Fig. 3 point estimates read off the figure by pixel measurement (spec section 3) [R]; Fig. 4 IQMs likewise
PAPER_FIG3 = {"qrdqn": {"median": 0.14, "iqm": 0.20, "mean": 0.21, "optimality_gap": 0.79},
              "ppo": {"median": 0.31, "iqm": 0.31, "mean": 0.34, "optimality_gap": 0.66},
              "ede": {"median": 0.51, "iqm": 0.41, "mean": 0.35, "optimality_gap": 0.65}}
PAPER_FIG4_IQM = {"ede": 0.41, "qrdqn_ucb": 0.20, "noisy_qrdqn": 0.22, "dqn_ucb": 0.02}
PAPER_TABLE1 = {"ede": (11.7, 1.0)}


def procgen_scores(runs: list[dict]) -> dict:
    """{method: (games, [seeds x games] array)} of test/normalized, games sorted, seeds in common only."""
    by = defaultdict(lambda: defaultdict(dict))
    for r in runs:
        cfg, m = r["config"], r["metrics"]
        if cfg["env"]["kind"] == "procgen" and "test/normalized" in m:
            by[cfg["method"]["name"]][cfg["env"]["game"]][cfg["seed"]] = m["test/normalized"]
    out = {}
    for method, games in by.items():
        names = sorted(games)
        seeds = sorted(set.intersection(*(set(games[g]) for g in names)))
        out[method] = (names, np.array([[games[g][s] for g in names] for s in seeds]).reshape(len(seeds), len(names)))
    return out


def render(runs: list[dict]) -> str:
    """Markdown tables of every method found in ``runs``."""
    lines = []
    scores = procgen_scores(runs)
    if scores:
        lines += ["### Procgen (test, min-max normalised; 95% stratified-bootstrap intervals)", "",
                  "| method | games x seeds | median | IQM | mean | optimality gap "
                  "| paper (median / IQM / mean / gap) [R] |",
                  "|---|---|---|---|---|---|---|"]
        for method in sorted(scores):
            games, s = scores[method]
            if s.size == 0:
                lines.append(f"| {method} | no seed covers every game | | | | | |")
                continue
            agg = aggregate_with_ci(s)
            cells = [f"{p:.3f} [{lo:.3f}, {hi:.3f}]" for p, lo, hi in
                     (agg[k] for k in ("median", "iqm", "mean", "optimality_gap"))]
            paper = PAPER_FIG3.get(method)
            ref = " / ".join(f"{paper[k]:.2f}" for k in ("median", "iqm", "mean", "optimality_gap")) if paper else (
                f"IQM {PAPER_FIG4_IQM[method]:.2f}" if method in PAPER_FIG4_IQM else "-")
            flag = "" if len(games) == 16 else " (not all 16 games)"
            lines.append(f"| {method} | {len(games)} x {s.shape[0]}{flag} | " + " | ".join(cells) + f" | {ref} |")
        lines.append("")
    crafter = defaultdict(list)
    for r in runs:
        if r["config"]["env"]["kind"] == "crafter" and "crafter/score" in r["metrics"]:
            crafter[r["config"]["method"]["name"]].append(r["metrics"]["crafter/score"])
    if crafter:
        lines += ["### Crafter score (%, over the training episodes)", "", "| method | seeds | ours | paper [R] |",
                  "|---|---|---|---|"]
        for method, v in sorted(crafter.items()):
            paper = PAPER_TABLE1.get(method)
            sd = f"{np.std(v, ddof=1):.2f}" if len(v) > 1 else "-"
            lines.append(f"| {method} | {len(v)} | {np.mean(v):.2f} +- {sd} | "
                         f"{f'{paper[0]} +- {paper[1]}' if paper else '-'} |")
        lines.append("")
    return "\n".join(lines) if lines else "no Procgen or Crafter runs found\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", help="a directory holding train.py runs (searched recursively for metrics.json)")
    ap.add_argument("--out", help="write the tables here too")
    a = ap.parse_args()
    text = render(find_runs(a.runs))
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
