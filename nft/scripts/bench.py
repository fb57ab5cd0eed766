#!/usr/bin/env python
"""Speed (the issue's benchmark), one CPU thread by default:
  1. forward + backward time of one NFT block (NPAttention + feed-forward, pre-LN) vs one NFN-NP layer (NPLinear)
     of the same width C on a batch of SIRENs (2 -> 32 -> 32 -> 1, the paper's MNIST SIRENs), at several C;
     also the HNP layer;
  2. SIREN-fitting throughput (SIRENs fitted per second, one full-batch Adam step counted per SIREN-step) with the
     batched fitter, at several batch sizes, on 28 x 28 images.
Writes results/bench.md.
    python scripts/bench.py [--channels 16 32 64] [--batch 64] [--repeats 5] [--threads 1]
"""
import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from nft import HNPLinear, NFTBlock, NPLinear  # noqa: E402
from nft.siren import fit_sirens  # noqa: E402
from nft.weight_space import WeightSpaceFeatures  # noqa: E402

WIDTHS = (2, 32, 32, 1)


def feats(c: int, b: int) -> WeightSpaceFeatures:
    g = torch.Generator().manual_seed(0)
    w = tuple(torch.randn(b, c, WIDTHS[i + 1], WIDTHS[i], generator=g) for i in range(3))
    bb = tuple(torch.randn(b, c, WIDTHS[i + 1], generator=g) for i in range(3))
    return WeightSpaceFeatures(w, bb)


def time_fwd_bwd(layer, x, repeats: int) -> float:
    x = x.map(lambda t: t.requires_grad_(True))

    def once():
        y = layer(x)
        sum(t.square().sum() for t in y.weights + y.biases).backward()

    once()
    t0 = time.perf_counter()
    for _ in range(repeats):
        once()
    return (time.perf_counter() - t0) / repeats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fit-batches", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--fit-steps", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    lines = ["# nft speed benchmark", "",
             f"`make -C nft bench` (python scripts/bench.py), {a.threads} CPU thread(s), torch {torch.__version__}, "
             f"{platform.processor() or platform.machine()}. SIRENs 2 -> 32 -> 32 -> 1, batch {a.batch}, forward + "
             f"backward, mean of {a.repeats} after one warm-up.", "",
             "| C | NFN-NP layer (NPLinear) | NFN-HNP layer (HNPLinear) | NFT block (attention + FF) | NFT / NFN-NP |",
             "|---|---|---|---|---|"]
    for c in a.channels:
        x = feats(c, a.batch)
        t_np = time_fwd_bwd(NPLinear(3, c, c), x, a.repeats)
        t_hnp = time_fwd_bwd(HNPLinear(WIDTHS, c, c), x, a.repeats)
        t_nft = time_fwd_bwd(NFTBlock(3, c, heads=4, ff_factor=2), x, a.repeats)
        lines.append(f"| {c} | {t_np * 1e3:.1f} ms | {t_hnp * 1e3:.1f} ms | {t_nft * 1e3:.1f} ms | "
                     f"{t_nft / t_np:.1f}x |")
        print(lines[-1], flush=True)
    lines += ["", f"SIREN fitting (28 x 28 grey images, 2 -> 32 -> 32 -> 1, {a.fit_steps} full-batch Adam steps, "
              "all networks of a batch in one `baddbmm` per layer):", "",
              "| SIRENs per batch | seconds per step | SIREN-steps per second | SIRENs per second at 1000 steps |",
              "|---|---|---|---|"]
    for n in a.fit_batches:
        images = torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
        fit_sirens(images[:8], (32, 32), 2, w0_first=30.0)
        t0 = time.perf_counter()
        fit_sirens(images, (32, 32), a.fit_steps, w0_first=30.0, chunk=n)
        per_step = (time.perf_counter() - t0) / a.fit_steps
        lines.append(f"| {n} | {per_step:.3f} | {n / per_step:,.0f} | {n / per_step / 1000:.1f} |")
        print(lines[-1], flush=True)
    out = Path(__file__).resolve().parents[1] / "results" / "bench.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
