"""Speed (issue #9): seconds per move of the sampled planner in PTTT and ADH3 at a fixed budget (10 particles x 4
rollouts per action), and the exact planner's time per infostate in Leduc (flat tree built once, then q and the
update for all infostates). Writes results/bench.md.

    python scripts/bench.py [--games 10]
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from open_spiel.python import policy as osp

from update_equivalence import SampledPlanner, exact_search_policy, head_to_head, load_game
from update_equivalence.exact import game_tree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", type=int, default=10, help="head-to-head games per planner")
    ap.add_argument("--out", default="results/bench.md")
    a = ap.parse_args()
    rows = []
    for name in ("phantom_ttt", "dark_hex(board_size=3,gameversion=adh)"):
        game = load_game(name)
        u = osp.UniformRandomPolicy(game)
        for eta in (10.0, np.inf):
            planner = SampledPlanner(game, u, eta, 0.1 if np.isfinite(eta) else 0.0, 10, 4, seed=0)
            r = head_to_head(game, planner, u, a.games)
            rows.append((name, "greedy" if np.isinf(eta) else "MMDS(10, 0.1)", f"{r['sec_per_move']:.3f} s/move"))
    game = load_game("leduc_poker")
    t0 = time.perf_counter()
    tree = game_tree(game)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact_search_policy(game, osp.TabularPolicy(game), 1.0)
    t = time.perf_counter() - t0
    n_info = tree.legal.shape[0]
    rows.append(("leduc_poker", "exact MMDS, all infostates",
                 f"{1e6 * t / n_info:.0f} µs/infostate ({n_info} infostates, {t:.2f} s; tree built once in "
                 f"{build:.2f} s)"))
    lines = [f"# Planner speed ({platform.processor() or 'CPU'}, one core)", "",
             f"`python scripts/bench.py --games {a.games}`", "", "| game | planner | time |", "|---|---|---|"]
    lines += [f"| {g} | {p} | {t} |" for g, p, t in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
