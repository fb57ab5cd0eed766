"""Speed: one jitted full-batch training step of the two-layer MLP on the mini's task with the gradient penalty on
500 unlabeled points (double backprop) vs the same step without it (ERM on the same points), CPU, one thread.
Writes results/bench.md. The spec's target: the penalty step costs <= 3x the plain one."""
import os
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from epac import gradient_penalty, make_model, make_synthetic  # noqa: E402


def timed(step, params, opt, reps=200):
    params, opt = step(params, opt)  # compile
    jax.block_until_ready(params)
    t0 = time.perf_counter()
    for _ in range(reps):
        params, opt = step(params, opt)
    jax.block_until_ready(params)
    return (time.perf_counter() - t0) / reps


def main():
    task = make_synthetic("twolayer", n_labeled=500, k=500, seed=0)
    model = make_model("mlp", [64])
    params = model.init(jax.random.PRNGKey(0), task.x_l[:1])
    tx = optax.adamw(3e-3, weight_decay=1e-4)
    x, y, xu, gu = (jnp.asarray(a) for a in (task.x_l, task.y_l, task.x_u, task.expl_u.g))

    def erm(p):
        return jnp.mean((model.apply(p, x) - y) ** 2)

    def penalised(p):
        return erm(p) + gradient_penalty(model.apply, p, xu, task.expl_u, gu)

    def make(loss):
        @jax.jit
        def step(p, o):
            g = jax.grad(loss)(p)
            u, o = tx.update(g, o, p)
            return optax.apply_updates(p, u), o
        return step

    plain = timed(make(erm), params, tx.init(params))
    pen = timed(make(penalised), params, tx.init(params))
    lines = ["# epac speed (`make -C epac bench`, scripts/bench.py)", "",
             f"jax {jax.__version__}, backend {jax.default_backend()}, one thread; MLP 10-64-1, 500 labeled + 500 "
             "unlabeled points, full batch, jitted Adam step, mean of 200 steps", "",
             "| step | time |", "|---|---|", f"| ERM only | {plain * 1e3:.3f} ms |",
             f"| ERM + gradient penalty on 500 points (double backprop) | {pen * 1e3:.3f} ms |",
             f"| ratio | {pen / plain:.2f}x (target <= 3x) |"]
    out = Path(__file__).resolve().parents[1] / "results" / "bench.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
