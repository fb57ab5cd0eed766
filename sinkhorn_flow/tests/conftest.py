"""Shared fixtures: one thread, POT without its slow optional backends, small random problems."""
import os

for _b in ("JAX", "TF", "TENSORFLOW", "CUPY"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_b}", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def random_problem(k=6, l=5, batch=(), seed=0, dtype=torch.float64):
    """Random scores and Dirichlet marginals of equal mass."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(*batch, k, l, generator=g, dtype=dtype)
    a = torch.distributions.Dirichlet(torch.ones(k, dtype=dtype)).sample(batch)
    b = torch.distributions.Dirichlet(torch.ones(l, dtype=dtype)).sample(batch)
    return s, a, b


@pytest.fixture
def problem():
    torch.manual_seed(0)
    return random_problem()
