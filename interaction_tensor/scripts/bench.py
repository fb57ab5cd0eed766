#!/usr/bin/env python
"""Speed (the issue's benchmark): building Omega for M = 20 models, N = 10,000 points, K = 50 components from
random activations of width 512, on one CPU thread; target under 60 s. Times each stage. Writes results/bench.md.
    python scripts/bench.py [--models 20] [--points 10000] [--k 50] [--width 512]
"""
import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from interaction_tensor import tensor as T  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--width", type=int, default=512)
    a = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    # a few shared factors plus noise, so that clusters form (timing barely depends on the values)
    z = torch.randn(a.points, 64, generator=g)
    acts = torch.stack([z @ torch.randn(64, a.width, generator=g) + torch.randn(a.points, a.width, generator=g)
                        for _ in range(a.models)])
    times = {}
    t0 = time.perf_counter()
    psi = T.canonical_signs(T.pca_components(acts, a.k))
    times["PCA (float64 covariance + eigh)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lam = T.correlation_tensor(psi)
    times["correlation tensor (one einsum)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    g_corr = T.corr_threshold(lam, 99.0)
    assign, _, _ = T.greedy_cluster(lam, g_corr)
    times["threshold + greedy clustering"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    it = T.interaction_tensor(acts, a.k)
    total = time.perf_counter() - t0
    lines = ["# interaction_tensor speed benchmark", "",
             f"`make -C interaction_tensor bench` (python scripts/bench.py), 1 CPU thread, torch {torch.__version__}, "
             f"{platform.processor() or platform.machine()}: M = {a.models}, N = {a.points}, K = {a.k}, width "
             f"{a.width} (random activations with 64 shared factors).", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in times.items()]
    lines += [f"| **whole `interaction_tensor()`** (Omega {tuple(it.omega.shape)}) | **{total:.2f}** |", "",
              f"Target: under 60 s. {'Met' if total < 60 else 'Not met'}."]
    out = Path(__file__).resolve().parents[1] / "results" / "bench.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
