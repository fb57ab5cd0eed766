"""The learners: zero weights reduce penalty, augmented Lagrangian and the variational student to supervised
learning exactly; on a linear model the angle-constrained least squares reaches its closed forms (1-D regression
along the direction at alpha = 0, OLS when the cone just holds the OLS solution); a killed run resumes to the same
parameters; NaN losses and bad options are named errors."""
import jax
import numpy as np
import pytest

import epac.learners as L
from epac import METHODS, Explanation, make_model, make_synthetic, train
from epac.data import Task


def _flat(p):
    return np.asarray(jax.flatten_util.ravel_pytree(p)[0])


@pytest.fixture(scope="module")
def task():
    return make_synthetic("twolayer", n_labeled=16, k=100, n_test=200, seed=0)


def test_zero_weights_reduce_to_supervised(task):
    model, kw = make_model("mlp", [16]), {"steps": 200, "chunk": 25}  # one chunk size: shared compiled code
    ref = _flat(train("supervised", model, task, **kw).params)
    # equal up to float32 rounding (XLA fuses the two programs differently)
    assert np.allclose(_flat(train("penalty", model, task, lam=0.0, **kw).params), ref, atol=1e-6)
    assert np.allclose(_flat(train("penalty_labeled", model, task, lam=0.0, **kw).params), ref, atol=1e-6)
    al = train("augmented_lagrangian", model, task, rho=0.0, dual_every=10, **kw)
    assert np.allclose(_flat(al.params), ref, atol=1e-6)  # rho = 0: mu never leaves 0
    # beta = 0: the student is supervised learning interrupted by teacher phases that do not touch it
    var = train("variational", model, task, warmup=50, rounds=3, beta=0.0, output="h", **kw)
    opts = L.Options(steps=200, warmup=50, rounds=3, output="h")
    student_steps = 50 + sum(n for name, n in L._phases("variational", opts) if name == "student")
    short = train("supervised", model, task, steps=student_steps, chunk=25)
    assert np.allclose(_flat(var.params), _flat(short.params), atol=1e-6)


def _linear_task(alpha, w_dir, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x @ np.array([1.0, 2.0, -1.0]) + 0.1 * rng.standard_normal(40)).astype(np.float32)
    e = Explanation("angle", np.tile(w_dir, (40, 1)).astype(np.float32), alpha=alpha)
    return Task(x, y, x, e, e, x, y, e, "mse", "linear"), x, y


def test_constrained_linear_least_squares_closed_forms():
    a = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    task, x, y = _linear_task(0.0, a)
    # alpha = 0: the best w on the ray t a, t >= 0: 1-D regression along a
    t = max(0.0, float((x @ a) @ y / ((x @ a) @ (x @ a))))
    # the cone distance is an exact penalty: a finite weight gives the constrained solution itself
    res = train("penalty", make_model("linear"), task, steps=3000, lr=1e-2, lam=10.0, weight_decay=0.0)
    w = np.asarray(res.params["params"]["Dense_0"]["kernel"])[:, 0]
    assert np.allclose(w, t * a, atol=5e-3) and res.metrics["test/satisfaction"] == 1.0
    # alpha just above the OLS solution's angle: the constraint binds early in training, not at the end: OLS
    ols = np.linalg.lstsq(x, y, rcond=None)[0]
    task, x, y = _linear_task(float(np.arccos(ols @ a / np.linalg.norm(ols))) + 0.05, a)
    res = train("augmented_lagrangian", make_model("linear"), task, steps=3000, lr=3e-2, weight_decay=0.0)
    w = np.asarray(res.params["params"]["Dense_0"]["kernel"])[:, 0]
    assert np.allclose(w, ols, atol=1e-2)


def test_killed_run_resumes_to_the_same_parameters(tmp_path, monkeypatch, task):
    model = make_model("mlp", [16])
    full = train("variational", model, task, steps=300, warmup=60, rounds=2, chunk=40)
    real_save, calls = L._save, []

    def dying_save(*a):
        real_save(*a)
        calls.append(1)
        if len(calls) == 4:  # killed right after the 4th checkpoint (inside a teacher phase)
            raise KeyboardInterrupt

    monkeypatch.setattr(L, "_save", dying_save)
    ck = tmp_path / "ck.msgpack"
    with pytest.raises(KeyboardInterrupt):
        train("variational", model, task, steps=300, warmup=60, rounds=2, chunk=40, checkpoint=str(ck))
    monkeypatch.setattr(L, "_save", real_save)
    resumed = train("variational", model, task, steps=300, warmup=60, rounds=2, chunk=40, checkpoint=str(ck))
    assert np.allclose(_flat(resumed.params), _flat(full.params), atol=1e-6)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]
    with pytest.raises(ValueError, match="another run"):
        train("variational", model, task, steps=300, warmup=60, rounds=3, chunk=40, checkpoint=str(ck))
    other = make_synthetic("twolayer", n_labeled=16, k=100, n_test=200, seed=1)  # same shapes, other data
    with pytest.raises(ValueError, match="another run"):
        train("variational", model, other, steps=300, warmup=60, rounds=2, chunk=40, checkpoint=str(ck))


def test_every_method_runs_on_a_classification_task():
    task = make_synthetic("twolayer", n_labeled=16, k=100, n_test=200, loss="logistic", seed=1)
    for m in METHODS:
        r = train(m, make_model("mlp", [8]), task, steps=40, warmup=10, rounds=1, chunk=40)
        assert 0 <= r.metrics["test/error"] <= 1 and np.isfinite(r.metrics["test/logloss"])


def test_bad_input_is_named(task):
    model = make_model("mlp", [8])
    bad = Task(task.x_l, task.y_l * np.nan, task.x_u, task.expl_u, task.expl_l, task.x_test, task.y_test,
               task.expl_test)
    with pytest.raises(FloatingPointError, match="lr"):
        train("supervised", model, bad, steps=10)
    with pytest.raises(ValueError, match="method="):
        train("lagrangian", model, task)
    with pytest.raises(TypeError, match="unknown options"):
        train("penalty", model, task, lambda_=1.0)
    with pytest.raises(ValueError, match="variational"):
        train("variational", model, task, steps=100, warmup=99, rounds=3)
    with pytest.raises(ValueError, match="rounds"):
        train("variational", model, task, steps=100, rounds=0)
    one = Task(task.x_l[:0], task.y_l[:0], task.x_u, task.expl_u, task.expl_l, task.x_test, task.y_test,
               task.expl_test)
    with pytest.raises(ValueError, match="no labeled points"):
        train("supervised", model, one)
    from epac.models import MLP

    assert train("supervised", MLP(hidden=[8]), task, steps=10).metrics["test/mse"] > 0  # a list field: no cache
