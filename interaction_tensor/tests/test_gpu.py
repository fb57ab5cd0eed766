"""GPU smoke: two ResNet18 members trained for a few steps on CIFAR-shaped random data on CUDA, their
activations extracted and Omega built; the batched MLP ensemble on CUDA."""
import pytest
import torch

from interaction_tensor import interaction_tensor
from interaction_tensor.members import extract, load_images, train_member

pytestmark = pytest.mark.gpu


def test_members_on_cuda_then_omega(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    data = load_images("random", n_random=256)
    acts, preds = [], []
    for seed in (0, 1):
        net = train_member(data, seed, epochs=1, lr=0.1, momentum=0.9, weight_decay=1e-4, batch=100,
                           schedule="cosine", ckpt=tmp_path / f"c{seed}.pt", device=torch.device("cuda"),
                           max_steps=5)
        assert next(net.parameters()).is_cuda
        out = extract(net, data[2], torch.device("cuda"))
        assert out["acts"].shape == (256, 512) and torch.isfinite(out["acts"]).all()
        acts.append(out["acts"])
        preds.append(out["pred"])
    it = interaction_tensor(torch.stack(acts), k=16)
    assert it.omega.shape[:2] == (2, 256) and it.n_features > 0
