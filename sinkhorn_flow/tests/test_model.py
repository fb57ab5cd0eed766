"""Models: softmax identity of n_iters=0, gradients reach the network, predicted marginals, GRU, training."""
import pytest
import torch

from sinkhorn_flow.data import drifting_blobs
from sinkhorn_flow.fit import evaluate_model, train_model
from sinkhorn_flow.metrics import cross_entropy, flow_metrics
from sinkhorn_flow.model import SinkhornFlow, fit_standardiser

NAMES = ["d2", "d", "same", "log_a", "log_b"]


@pytest.fixture(scope="module")
def data():
    d, _ = drifting_blobs(n_agents=200, n_communities=5, n_steps=41, seed=0)
    return d.to(dtype=torch.float32)


def make(data, names=NAMES, **kw):
    torch.manual_seed(0)
    mean, std = fit_standardiser(data.select_features(names), data.mask)
    return SinkhornFlow(len(names), feature_mean=mean, feature_std=std, **kw)


def test_zero_iterations_is_the_softmax_of_the_same_network(data):
    model = make(data, n_iters_train=0, n_iters_eval=0)
    z = (data.select_features(NAMES) - model.feature_mean) / model.feature_std
    expected = torch.log_softmax(model.scorer(z), -1) + data.a.log().unsqueeze(-1)
    got = model(data.select_features(NAMES), data.a, data.b, data.mask)
    ok = data.a > 0
    assert torch.allclose(got[ok], expected[ok], atol=1e-5)


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
def test_gradients_reach_every_parameter(data, backward):
    model = make(data, n_iters_train=30, backward=backward)
    loss = cross_entropy(data.flow, model(data.select_features(NAMES), data.a, data.b, data.mask)).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_predicted_marginals(data):
    names = NAMES[:-1]
    model = make(data, names, marginals="predicted", n_iters_eval=300).eval()
    log_p = model(data.select_features(names), data.a, None, data.mask)
    b_hat = model.predict_marginal((data.select_features(names) - model.feature_mean) / model.feature_std,
                                   data.a, data.mask)
    m = flow_metrics(data.flow, log_p, data.a, b_hat)
    assert m["row_l1"].max() < 1e-5 and m["col_l1"].max() < 1e-3  # Sinkhorn couples a with b_hat
    assert torch.allclose(b_hat.sum(-1), data.a.sum(-1), atol=1e-5)


def test_gru_scorer_uses_history(data):
    model = make(data, scorer="gru", n_iters_train=5)
    out = model(data.select_features(NAMES), data.a, data.b, data.mask, data.prev_trans)
    assert out.shape == data.flow.shape and torch.isfinite(out[data.a > 0]).all()
    with pytest.raises(ValueError, match="history"):
        model(data.select_features(NAMES), data.a, data.b, data.mask, None)


def test_training_lowers_kl_and_sinkhorn_beats_softmax_on_train(data):
    kl = {}
    for name, n in (("sinkhorn", 15), ("softmax", 0)):
        model = make(data, n_iters_train=n, n_iters_eval=200 if n else 0)
        before = evaluate_model(model, data, NAMES)["kl"]
        train_model(model, data, NAMES, steps=60, progress=False)
        kl[name] = evaluate_model(model, data, NAMES)["kl"]
        assert kl[name] < before / 2
    assert kl["sinkhorn"] < kl["softmax"]


def test_resume_gives_the_same_model(data, tmp_path):
    def run(ckpt, stop=None):
        model = make(data, n_iters_train=5)
        info = train_model(model, data, NAMES, steps=30, ckpt_path=ckpt, ckpt_every=10, stop_after=stop,
                           progress=False)
        return model, info

    full, _ = run(tmp_path / "a.pt")
    _, info = run(tmp_path / "b.pt", stop=20)
    assert info["stopped"] and info["steps_done"] == 20
    resumed, info = run(tmp_path / "b.pt")
    assert info["resumed_from"] == 20 and not info["stopped"]
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="marginals"):
        SinkhornFlow(3, marginals="guess")
    with pytest.raises(ValueError, match="scorer"):
        SinkhornFlow(3, scorer="transformer")
