"""Speed of the deep loop on a vectorised Procgen env (the issue's benchmark): env steps per second of
(a) raw env stepping with random actions, (b) the loop acting with EDE's UCB + TEE and filling the replay (no
updates), (c) the full training loop with one update per vector step. Writes results/bench.md.

    python scripts/bench.py                            # CPU, 64 envs, batch 64 per head, the paper's network
    python scripts/bench.py --device cuda --batch 512  # a GPU node (also times bf16 autocast)
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ede import EDEAgent, EDENetwork, ImpalaCNN, Replay
from ede.envs import ProcgenVec, make_procgen
from ede.loop import train


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="bigfish")
    ap.add_argument("--envs", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64, help="minibatch per head")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--replay-device", default="cpu", help="cpu, or the training device (sampling on the GPU)")
    ap.add_argument("--raw-steps", type=int, default=300)
    ap.add_argument("--act-steps", type=int, default=60)
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--out", default="results/bench.md")
    a = ap.parse_args()
    env = ProcgenVec(make_procgen(a.game, a.envs))
    env.reset()
    rng = np.random.default_rng(0)
    raw = timed(lambda: [env.step(rng.integers(env.n_actions, size=env.n)) for _ in range(a.raw_steps)])
    rows = [("raw env stepping (random actions)", a.raw_steps * env.n / raw)]

    def setup(amp=None):
        torch.manual_seed(0)
        net = EDENetwork(ImpalaCNN(3), env.n_actions, heads=5, quantiles=200, hidden=512)
        agent = EDEAgent(net, batch_size=a.batch, device=a.device, amp=amp)
        return agent, Replay(1000, env.n, env.obs_shape, device=a.replay_device)

    agent, replay = setup()
    act = timed(lambda: train(agent, env, replay, a.act_steps + 1, explore="ucb", start_steps=1,
                              train_freq=10 ** 9))
    rows.append(("loop acting with UCB + TEE, no updates", a.act_steps * env.n / act))
    warm = 8  # replay filled with random steps, then one update per vector step
    agent, replay = setup()
    train(agent, env, replay, warm, start_steps=warm)
    full = timed(lambda: train(agent, env, replay, warm + a.train_steps, explore="ucb", start_steps=0,
                               train_freq=1))  # resumes nothing: a fresh count of steps (the replay stays filled)
    rows.append((f"training loop, one update per vector step (batch {a.batch} x 5 heads)",
                 (warm + a.train_steps) * env.n / full))
    if a.device == "cuda":
        agent, replay = setup("bf16")
        train(agent, env, replay, warm, start_steps=warm)
        t = timed(lambda: train(agent, env, replay, warm + a.train_steps, explore="ucb", start_steps=0))
        rows.append((f"training loop, bf16 autocast (batch {a.batch} x 5 heads)", (warm + a.train_steps) * env.n / t))
    dev = torch.cuda.get_device_name() if a.device == "cuda" else f"{platform.processor() or 'CPU'}, " \
        f"{torch.get_num_threads()} threads"
    cmd = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items())
    lines = [f"# Deep loop speed ({a.game}, {env.n} envs, {dev})", "", f"`python scripts/bench.py {cmd}`",
             "", "| what | env steps/s | vs raw |", "|---|---:|---:|"]
    lines += [f"| {name} | {v:,.0f} | {100 * v / rows[0][1]:.1f}% |" for name, v in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
