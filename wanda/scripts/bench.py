#!/usr/bin/env python
"""Speed: the mask computation of Wanda vs SparseGPT (the paper's point: Wanda needs no weight update).

For each hidden size d, one Llama block's seven linears (q, k, v, o: d x d; gate, up: 2.6d x d; down:
d x 2.6d) get random weights and calibration statistics (timing does not depend on the values); we time
  Wanda:     |W| * sqrt(sum x^2) and the per-row sort            (masks.wanda_score + masks.mask_per_row)
  SparseGPT: Cholesky of H^-1 and the blockwise OBS mask + update (masks.sparsegpt_prune, blocksize 128)
at 50% unstructured, one thread by default. Then, on the mini's trained tiny Llama (cached by
`make -C wanda tiny`) and ONE calibration batch (128 windows of 128 bytes), the whole prune() call of each
method on a fresh copy of the model: calibration forwards included, the same inputs for both.
Writes results/bench.md.
    python scripts/bench.py [--sizes 128 256 512 1024] [--repeats 3]
"""
import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from wanda.masks import mask_per_row, sparsegpt_prune, wanda_score  # noqa: E402


def block_shapes(d: int) -> list[tuple[int, int]]:
    ff = int(2.625 * d) // 8 * 8
    return [(d, d)] * 4 + [(ff, d)] * 2 + [(d, ff)]


def timed(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_tiny_model(repeats: int) -> list[str]:
    """prune() wall time of Wanda vs SparseGPT on the cached mini model and one calibration batch."""
    import copy

    from shared.testing import compose
    from wanda.pipeline import PROJECT_DIR, build
    from wanda.prune import prune

    cfg = compose(PROJECT_DIR / "configs", ["progress=false"])
    folder = list((PROJECT_DIR / cfg.model.cache_dir).glob("tiny_llama_*/config.json"))
    if not folder:
        return ["", "(tiny-model timing skipped: run `make -C wanda tiny` first to train and cache it)"]
    model, _, calib, _, _ = build(cfg, torch.device("cpu"))
    times = {}
    for method in ("wanda", "sparsegpt"):
        times[method] = timed(lambda m=method: prune(copy.deepcopy(model), calib, method=m, sparsity=0.5,
                                                     batch_size=8, progress=False), repeats)
    r = times["sparsegpt"] / times["wanda"]
    print(f"tiny model: wanda {times['wanda']:.2f} s, sparsegpt {times['sparsegpt']:.2f} s, ratio {r:.1f}x", flush=True)
    return ["", "Whole `prune()` on the mini's trained model (hidden 128, 4 blocks), one calibration batch of",
            f"{calib.shape[0]} x {calib.shape[1]} tokens, calibration forwards included (best of {repeats}):", "",
            "| Wanda s | SparseGPT s | SparseGPT / Wanda |", "|---|---|---|",
            f"| {times['wanda']:.2f} | {times['sparsegpt']:.2f} | {r:.1f}x |"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    g = torch.Generator().manual_seed(0)
    rows = []
    for d in a.sizes:
        mats = []
        for out_f, in_f in block_shapes(d):
            w = torch.randn(out_f, in_f, generator=g).to(a.device)
            x = torch.randn(4 * in_f, in_f, generator=g).to(a.device)
            mats.append((w, (x * x).sum(0), 2 * x.T @ x / x.shape[0]))

        def sync():
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()

        def run_wanda(mats=mats):
            for w, sq, _ in mats:
                w.clone()[mask_per_row(wanda_score(w, sq), 0.5)] = 0
            sync()

        def run_sparsegpt(mats=mats):
            for w, _, h in mats:
                sparsegpt_prune(w, h, 0.5)
            sync()

        tw, ts = timed(run_wanda, a.repeats), timed(run_sparsegpt, a.repeats)
        rows.append((d, tw, ts))
        print(f"hidden {d}: wanda {tw * 1e3:.2f} ms, sparsegpt {ts * 1e3:.1f} ms, ratio {ts / tw:.0f}x", flush=True)
    import sys

    cmd = "python scripts/bench.py " + " ".join(sys.argv[1:])
    lines = [f"# Mask computation of one Llama block: Wanda vs SparseGPT ({a.device}, "
             f"{torch.get_num_threads()} thread(s), 50% unstructured)", "",
             f"Reproduce: `{cmd.strip()}` (from wanda/; `make -C wanda bench` for the defaults)", "",
             "| hidden | Wanda ms | SparseGPT ms | SparseGPT / Wanda |", "|---|---|---|---|"]
    lines += [f"| {d} | {tw * 1e3:.2f} | {ts * 1e3:.1f} | {ts / tw:.0f}x |" for d, tw, ts in rows]
    model_lines = bench_tiny_model(a.repeats)
    ratios = [ts / tw for _, tw, ts in rows]
    trend = "grew" if ratios[-1] > ratios[0] else "did not grow"
    lines += ["", f"Over hidden {rows[0][0]} -> {rows[-1][0]} the ratio {trend} ({ratios[0]:.0f}x -> "
              f"{ratios[-1]:.0f}x). Wanda costs one elementwise product and one k-th-value selection per row (O(d^2) a "
              "matrix); SparseGPT a Cholesky (O(d^3)) and a column-sequential update."]
    lines += model_lines
    text = "\n".join(lines) + "\n"
    name = "bench.md" if a.device == "cpu" else f"bench_{a.device.replace(':', '')}.md"
    out = Path(__file__).resolve().parents[1] / "results" / name
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
