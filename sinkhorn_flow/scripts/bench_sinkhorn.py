#!/usr/bin/env python
"""Speed: our batched Sinkhorn layer, forward + backward, vs POT's ot.sinkhorn forward on the same inputs.

Batch 64 of 20x20 problems, 50 iterations, float64, one thread (OMP_NUM_THREADS=1). POT solves one problem
per call (its ot.sinkhorn does not batch different cost matrices), with its numpy and torch backends, in
both its plain ('sinkhorn') and log-domain ('sinkhorn_log') methods. Target (issue): ours fwd+bwd is no
slower than POT's forward. Writes results/bench.md.
    python scripts/bench_sinkhorn.py [--repeats 10]
"""
import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
for backend in ("JAX", "TF", "CUPY", "TENSORFLOW"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")

import numpy as np  # noqa: E402
import ot  # noqa: E402
import torch  # noqa: E402

from sinkhorn_flow import sinkhorn  # noqa: E402


def timeit(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=20)
    p.add_argument("--iters", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    g = torch.Generator().manual_seed(0)
    B, K, n = args.batch, args.size, args.iters
    S = torch.randn(B, K, K, generator=g, dtype=torch.float64)
    a = torch.softmax(torch.randn(B, K, generator=g, dtype=torch.float64), -1)
    b = torch.softmax(torch.randn(B, K, generator=g, dtype=torch.float64), -1)
    Sn, an, bn = S.numpy(), a.numpy(), b.numpy()

    def ours_fb(backward):
        s = S.clone().requires_grad_()
        sinkhorn(s, a, b, n_iters=n, backward=backward).sum().backward()

    def ours_f():
        with torch.no_grad():
            sinkhorn(S, a, b, n_iters=n)

    def pot(xs, xa, xb, method):
        def f():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "did not converge": we fix the iteration count on purpose
                for i in range(B):
                    ot.sinkhorn(xa[i], xb[i], -xs[i], reg=1.0, method=method, numItermax=n, stopThr=0.0)
        return f

    rows = [
        ("ours forward+backward (unrolled)", timeit(lambda: ours_fb("unrolled"), args.repeats)),
        ("ours forward+backward (implicit)", timeit(lambda: ours_fb("implicit"), args.repeats)),
        ("ours forward only", timeit(ours_f, args.repeats)),
        ("POT forward, numpy, sinkhorn", timeit(pot(Sn, an, bn, "sinkhorn"), args.repeats)),
        ("POT forward, numpy, sinkhorn_log", timeit(pot(Sn, an, bn, "sinkhorn_log"), args.repeats)),
        ("POT forward, torch, sinkhorn", timeit(pot(S, a, b, "sinkhorn"), args.repeats)),
        ("POT forward, torch, sinkhorn_log", timeit(pot(S, a, b, "sinkhorn_log"), args.repeats)),
    ]
    fastest_pot = min(t for name, t in rows if name.startswith("POT"))
    ours = rows[0][1]
    lines = [f"# Sinkhorn layer speed (batch {B}, {K}x{K}, {n} iterations, float64, "
             f"{torch.get_num_threads()} thread)", "",
             "Reproduce: `make -C sinkhorn_flow bench` (`python scripts/bench_sinkhorn.py`)", "",
             "| what | median ms | vs ours fwd+bwd (unrolled) |", "|---|---|---|"]
    lines += [f"| {name} | {t * 1e3:.2f} | {t / ours:.2f}x |" for name, t in rows]
    verdict = "met" if ours <= fastest_pot else "NOT met"
    lines += ["", f"Target (ours fwd+bwd no slower than POT's fastest forward): **{verdict}** "
              f"({ours * 1e3:.2f} ms vs {fastest_pot * 1e3:.2f} ms)."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parents[1] / "results" / "bench.md"
    out.write_text(text)


if __name__ == "__main__":
    main()
