"""Every learner on one network and one step budget (full-batch Adam with decoupled weight decay):

- ``supervised``: ERM on the labeled points.
- ``penalty_labeled``: ERM + lam * phi at the labeled points only (explanations as a regulariser, the usual
  practice, e.g. right-for-the-right-reasons).
- ``penalty``: ERM + lam * phi on the unlabeled set (the EPAC constraint as a penalty).
- ``augmented_lagrangian``: ERM subject to phi_U(h) <= alpha: c = phi_U - alpha, loss ERM + mu c + rho/2 relu(c)^2,
  mu <- max(0, mu + rho c) every ``dual_every`` steps.
- ``variational``: our reading of the paper's Section 5 (the paper body could not be read here; every piece is a
  knob): a student h (ERM + beta * E_U l(h, f), f fixed) and a teacher f, the projection of h onto the constrained
  class (E_U l(f, h) + lam_f * phi_U(f), or the augmented Lagrangian of it), alternated for ``rounds`` after a
  supervised warm-up of h; f starts from h; ``output`` f (constraint-satisfying) or h.

Steps run in jitted ``lax.scan`` chunks; between chunks the state (parameters, optimiser states, dual variables,
phase and step) is checked for NaN and checkpointed, and a run finds and resumes its checkpoint.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from tqdm.auto import tqdm

from epac.constraints import Explanation, constrained, input_gradients, satisfied, surrogate
from epac.data import Task

METHODS = ("supervised", "penalty_labeled", "penalty", "augmented_lagrangian", "variational")


@dataclass
class Options:
    """Every learner's knobs (one budget: ``steps`` gradient steps in all, the variational phases included)."""

    steps: int = 800              # gradient steps in all
    lr: float = 3e-3              # Adam learning rate
    weight_decay: float = 1e-4    # decoupled weight decay (AdamW)
    lam: float = 1.0              # penalty weight (penalty, penalty_labeled)
    alpha: float = 0.05           # augmented Lagrangian: the constraint level phi_U <= alpha
    rho: float = 1.0              # augmented Lagrangian: quadratic weight and dual step
    dual_every: int = 50          # augmented Lagrangian: steps between dual updates
    warmup: int = 200             # variational: supervised steps of h before the rounds
    rounds: int = 3               # variational: teacher/student rounds (the rest of the budget, split evenly)
    beta: float = 1.0             # variational: weight of the student's agreement with the teacher on U
    lam_f: float = 1.0            # variational: the projection's constraint weight (projection=penalty)
    projection: str = "penalty"   # variational: penalty | augmented_lagrangian (then alpha, rho, dual_every)
    output: str = "f"             # variational: f (the projected teacher) | h (the student)
    chunk: int = 100              # steps per jitted call (checkpoint / progress granularity)
    tol: float = 0.1              # satisfaction: relative gradient error at most tol
    seed: int = 0                 # parameter initialisation
    progress: bool = False        # tqdm over chunks
    checkpoint: str | None = None  # a path: save after every chunk, resume when present


@dataclass
class Result:
    params: dict
    metrics: dict
    history: list = field(default_factory=list)


def _data_loss(kind, s, y):
    if kind == "mse":
        return jnp.mean((s - y) ** 2)
    return jnp.mean(jax.nn.softplus(s) - y * s)  # binary cross-entropy with logits


def _agree(kind, s, target):
    """E l(s, target) with the target fixed: squared error, or the cross-entropy to the target's probabilities
    (KL up to a constant) for a logistic task."""
    target = jax.lax.stop_gradient(target)
    if kind == "mse":
        return jnp.mean((s - target) ** 2)
    return jnp.mean(jax.nn.softplus(s) - jax.nn.sigmoid(target) * s)


def _phases(method: str, o: Options) -> list[tuple[str, int]]:
    """(phase, steps): which objective runs for how long. Variational: warm-up, then ``rounds`` of (teacher,
    student); with ``output=f`` the last round ends on the teacher (a final student phase could not change f)."""
    if method != "variational":
        return [(method, o.steps)]
    rest = o.steps - o.warmup
    names = ["teacher", "student"] * o.rounds
    if o.output == "f":
        names = names[:-1]
    if o.rounds < 1 or o.warmup < 0 or rest < len(names):
        raise ValueError(f"variational: rounds={o.rounds} (>= 1) and warmup={o.warmup} leave {rest} of "
                         f"steps={o.steps} for {len(names)} phases")
    per = rest // len(names)
    sizes = [per] * len(names)
    sizes[-1] += rest - per * len(names)  # the remainder goes to the last phase
    return ([("supervised", o.warmup)] if o.warmup else []) + list(zip(names, sizes))


def train(method: str, model, data: Task, **opts) -> Result:
    """Train ``model`` (a Flax module mapping ``[n, d]`` to scores ``[n]``) on ``data`` with ``method`` (one of
    ``METHODS``); ``opts`` are :class:`Options` fields. Returns the output parameters and test metrics."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}: one of {METHODS}")
    unknown = set(opts) - set(Options.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}: see epac.learners.Options")
    o = Options(**opts)
    if o.projection not in ("penalty", "augmented_lagrangian") or o.output not in ("f", "h"):
        raise ValueError(f"variational: projection={o.projection!r} (penalty | augmented_lagrangian), "
                         f"output={o.output!r} (f | h)")
    if data.n == 0:
        raise ValueError("no labeled points: data.n_labeled must be >= 1")
    data.expl_u.check(data.x_u)
    data.expl_l.check(data.x_l)
    data.expl_test.check(data.x_test)
    apply = model.apply
    key = jax.random.PRNGKey(o.seed)
    h0 = model.init(key, data.x_l[:1])
    tx = optax.adamw(o.lr, weight_decay=o.weight_decay)
    arrays = {"x_l": data.x_l, "y_l": data.y_l, "x_u": data.x_u, "g_u": _arr(data.expl_u.g, data.x_u),
              "m_u": _arr(data.expl_u.mask, data.x_u, 1.0), "g_l": _arr(data.expl_l.g, data.x_l),
              "m_l": _arr(data.expl_l.mask, data.x_l, 1.0)}
    arrays = jax.tree.map(jnp.asarray, arrays)
    e_u, e_l = data.expl_u, data.expl_l
    state = {"h": h0, "f": h0, "opt_h": tx.init(h0), "opt_f": tx.init(h0), "mu": jnp.zeros(()),
             "mu_f": jnp.zeros(()), "phase": 0, "step": 0}
    phases = _phases(method, o)
    history = []
    ck = Path(o.checkpoint) if o.checkpoint else None
    signature = _signature(method, o, _fingerprint(data, model))
    if ck is not None and ck.exists():
        state, history = _restore(ck, state, signature)

    static = (model, data.loss, (e_u.kind, float(e_u.alpha)), (e_l.kind, float(e_l.alpha)),
              (o.lr, o.weight_decay, o.lam, o.alpha, o.rho, o.dual_every, o.beta, o.lam_f, o.projection))

    total = sum(n for _, n in phases)
    done = sum(n for _, n in phases[: state["phase"]]) + state["step"]
    t_start = time.perf_counter()
    with tqdm(total=total, initial=done, desc=method, disable=not o.progress) as bar:
        while state["phase"] < len(phases):
            name, n_phase = phases[state["phase"]]
            n = min(o.chunk, n_phase - state["step"])
            who, other = ("f", "h") if name == "teacher" else ("h", "f")
            mu_key = "mu_f" if name == "teacher" else "mu"
            if name == "teacher" and state["step"] == 0 and state["phase"] == _first_teacher(phases):
                state["f"], state["opt_f"] = state["h"], tx.init(state["h"])  # f starts from the warmed-up h
            key = (*static[:4], _relevant(static[4], name), name, n)
            try:
                fn = _chunk_fn(*key)
            except TypeError:  # an unhashable module (e.g. a list field): compile without the cache
                fn = _chunk_fn.__wrapped__(*key)
            p, opt, mu, vals, cs = fn(state[who], state[f"opt_{who}"], state[other], state[mu_key], state["step"],
                                      arrays)
            if not bool(jnp.all(jnp.isfinite(vals))):
                raise FloatingPointError(f"{method}: the loss became NaN/inf in phase {name!r} near step "
                                         f"{done + n}: lower optim.lr (now {o.lr}) or the penalty weight")
            state.update({who: p, f"opt_{who}": opt, mu_key: mu, "step": state["step"] + n})
            history.append({"step": done + n, "phase": name, "loss": float(vals[-1]), "constraint": float(cs[-1]),
                            "mu": float(mu)})
            done += n
            bar.update(n)
            if state["step"] >= n_phase:
                state["phase"], state["step"] = state["phase"] + 1, 0
            if ck is not None:
                _save(ck, state, history, signature)
    out = state["f"] if method == "variational" and o.output == "f" else state["h"]
    metrics = evaluate(apply, out, data, o.tol)
    metrics["train/constraint_u"] = float(jnp.mean(surrogate(input_gradients(apply, out, arrays["x_u"]), e_u,
                                                             arrays["g_u"], arrays["m_u"])))
    metrics["time/train_seconds"] = time.perf_counter() - t_start
    return Result(out, metrics, history)


def _relevant(hyper: tuple, name: str) -> tuple:
    """The hyperparameters phase ``name`` uses; the others are blanked so that phases share compiled code."""
    lr, wd, lam, alpha, rho, dual_every, beta, lam_f, projection = hyper
    keep = {"supervised": (), "penalty": ("lam",), "penalty_labeled": ("lam",), "student": ("beta",),
            "augmented_lagrangian": ("alpha", "rho", "dual_every"),
            "teacher": ("lam_f", "projection") + (("alpha", "rho", "dual_every") if projection != "penalty" else ())}
    vals = dict(lam=lam, alpha=alpha, rho=rho, dual_every=dual_every, beta=beta, lam_f=lam_f, projection=projection)
    return (lr, wd, *[vals[k] if k in keep[name] else None for k in vals])


@lru_cache(maxsize=512)
def _chunk_fn(model, loss_kind: str, eu: tuple, el: tuple, hyper: tuple, name: str, n: int):
    """A jitted function running ``n`` steps of phase ``name``; cached on everything static (model, loss, the
    explanations' kinds and angles, the hyperparameters), so repeated runs (sweeps, tests) compile once."""
    lr, wd, lam, alpha, rho, dual_every, beta, lam_f, projection = hyper
    apply = model.apply
    tx = optax.adamw(lr, weight_decay=wd)
    e_u, e_l = Explanation(eu[0], alpha=eu[1]), Explanation(el[0], alpha=el[1])

    def phi(params, x, g, m, e):
        return jnp.mean(surrogate(input_gradients(apply, params, x), e, g, m))

    def aug(v, mu):
        return mu * v + 0.5 * rho * jax.nn.relu(v) ** 2

    def loss(p, other, mu, a):
        """(objective, constraint value) of phase ``name`` for parameters p (``other``: the fixed partner)."""
        erm = _data_loss(loss_kind, apply(p, a["x_l"]), a["y_l"])
        if name == "supervised":
            return erm, jnp.zeros(())
        if name == "penalty_labeled":
            c = phi(p, a["x_l"], a["g_l"], a["m_l"], e_l)
            return erm + lam * c, c
        if name == "student":
            return erm + beta * _agree(loss_kind, apply(p, a["x_u"]), apply(other, a["x_u"])), jnp.zeros(())
        c = phi(p, a["x_u"], a["g_u"], a["m_u"], e_u)
        if name == "penalty":
            return erm + lam * c, c
        if name == "augmented_lagrangian":
            return erm + aug(c - alpha, mu), c
        # teacher: the projection of the student h (``other``) onto the constrained class, on U
        fit = _agree(loss_kind, apply(p, a["x_u"]), apply(other, a["x_u"]))
        return (fit + lam_f * c if projection == "penalty" else fit + aug(c - alpha, mu)), c

    dual = name == "augmented_lagrangian" or (name == "teacher" and projection == "augmented_lagrangian")

    @jax.jit
    def run(p, opt, other, mu, t0, a):
        def step(carry, t):
            p, opt, mu = carry
            (val, c), g = jax.value_and_grad(lambda q: loss(q, other, mu, a), has_aux=True)(p)
            upd, opt = tx.update(g, opt, p)
            p = optax.apply_updates(p, upd)
            if dual:
                mu = jnp.where((t + 1) % dual_every == 0, jnp.maximum(0.0, mu + rho * (c - alpha)), mu)
            return (p, opt, mu), (val, c)

        (p, opt, mu), (vals, cs) = jax.lax.scan(step, (p, opt, mu), t0 + jnp.arange(n))
        return p, opt, mu, vals, cs

    return run


def _first_teacher(phases) -> int:
    return next(i for i, (name, _) in enumerate(phases) if name == "teacher")


def _arr(a, like, fill: float = 0.0):
    return np.full(np.shape(like), fill, np.float32) if a is None else np.asarray(a, np.float32)


def evaluate(apply, params, data: Task, tol: float = 0.1) -> dict:
    """Test error (MSE; or 0-1 error and log-loss for a logistic task), the mean constraint violation phi on the
    test points against their true explanations, and the fraction of test points satisfying the constraint."""
    e = data.expl_test
    s = apply(params, jnp.asarray(data.x_test))
    grads = input_gradients(apply, params, jnp.asarray(data.x_test))
    keep = constrained(e)  # points an explanation says nothing about are left out of both averages
    keep = jnp.ones(len(data.x_test), bool) if keep is None else keep
    n_keep = jnp.maximum(keep.sum(), 1)
    out = {"test/violation": float(jnp.where(keep, surrogate(grads, e), 0.0).sum() / n_keep),
           "test/satisfaction": float(jnp.where(keep, satisfied(grads, e, tol), False).sum() / n_keep),
           "test/constrained_points": int(keep.sum())}
    if data.loss == "mse":
        out["test/mse"] = float(jnp.mean((s - data.y_test) ** 2))
        out["test/error"] = out["test/mse"]
    else:
        out["test/error"] = float(jnp.mean((s > 0) != (data.y_test > 0.5)))
        out["test/logloss"] = float(_data_loss("logistic", s, data.y_test))
    return out


def _fingerprint(data: Task, model) -> str:
    """A hash of the task's arrays and the model's description: a checkpoint only resumes the same run."""
    import hashlib

    h = hashlib.sha256(repr(model).encode())
    for e in (data.expl_u, data.expl_l):
        h.update(f"{e.kind}{e.alpha}".encode())
    for a in (data.x_l, data.y_l, data.x_u, data.expl_u.g, data.expl_u.mask, data.expl_l.g, data.expl_l.mask):
        h.update(b"none" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _signature(method: str, o: Options, fingerprint: str) -> dict:
    d = {k: v for k, v in o.__dict__.items() if k not in ("progress", "checkpoint", "chunk")}
    return {"method": method, **d, "data_and_model": fingerprint}


def _save(path: Path, state, history, signature):
    """One file, written then renamed: state, history and signature always belong together."""
    import json

    blob = serialization.msgpack_serialize({"state": serialization.to_state_dict(jax.tree.map(np.asarray, state)),
                                            "meta": json.dumps({"signature": signature, "history": history})})
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)


def _restore(path: Path, template, signature):
    import json

    raw = serialization.msgpack_restore(path.read_bytes())
    meta = json.loads(raw["meta"])
    if meta["signature"] != signature:
        raise ValueError(f"{path} belongs to another run (method, options, data or model differ): use a fresh "
                         "run_dir")
    state = serialization.from_state_dict(template, raw["state"])
    state["phase"], state["step"] = int(state["phase"]), int(state["step"])
    return state, meta["history"]
