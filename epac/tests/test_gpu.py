"""GPU smoke: JAX on CUDA, a few jitted augmented-Lagrangian chunks on the synthetic task: finite, and the
constraint on the unlabeled points decreases."""
import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def test_augmented_lagrangian_on_cuda():
    import jax

    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("no CUDA device for JAX")
    from epac import make_model, make_synthetic, train

    task = make_synthetic("twolayer", n_labeled=32, k=2000, seed=0)
    res = train("augmented_lagrangian", make_model("mlp", [256]), task, steps=600, chunk=100)
    cons = [h["constraint"] for h in res.history]  # phi_U (the AL objective itself grows with mu)
    assert jax.default_backend() == "gpu" and all(np.isfinite([h["loss"] for h in res.history]))
    assert cons[-1] < cons[0] and res.metrics["test/mse"] < 1.0
