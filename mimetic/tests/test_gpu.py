"""GPU smoke: one epoch of ViT-Tiny patch 2 on random 32x32 images in bf16 on CUDA with mimetic init; the loss is
finite and falling; the pipeline's gpu_smoke experiment writes metrics.json; a run killed after epoch 1 resumes on
CUDA (the checkpoint's RNG states are CPU tensors)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mimetic import data as D
from mimetic.fit import classification_loss, train
from mimetic.models import apply_init, build_vit

pytestmark = pytest.mark.gpu
PROJECT = Path(__file__).resolve().parents[1]


def _need_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")


def test_one_bf16_epoch_loss_finite_and_falling():
    _need_cuda()
    torch.manual_seed(0)
    model = build_vit(32, 2, 3, 10, 192, 12, 3, 4.0, "sincos")
    assert apply_init(model, "mimetic", generator=torch.Generator().manual_seed(0))["init/mimetic_layers"] == 12
    x, y = D.random_images(4096, 32, 3, 10, 0)
    losses = []

    def loss_fn(m, b):
        loss = classification_loss(m, b)
        losses.append(loss.item())
        return loss

    out = train(model, D.TensorBatches(x, y, 128, 0), loss_fn, lambda m: {}, epochs=1, lr=1e-3, warmup_epochs=0.1,
                weight_decay=0.01, clip_grad=3.0, device=torch.device("cuda"), amp_dtype=torch.bfloat16,
                progress=False)
    assert len(losses) == 32 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8, losses
    print(f"ViT-Tiny/2 bf16: {out['examples'] / out['seconds']:.0f} images/s, loss {losses[0]:.3f} -> {losses[-1]:.3f}")


def test_gpu_smoke_experiment_writes_metrics(tmp_path):
    _need_cuda()
    out = subprocess.run([sys.executable, "train.py", "+experiment=gpu_smoke", f"run_dir={tmp_path}",
                          "train.progress=false"], cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["init/mimetic_layers"] == 12 and 0 <= m["test/acc"] <= 100
    assert torch.isfinite(torch.tensor(m["train/final_loss"]))


def test_kill_and_resume_on_cuda(tmp_path):
    _need_cuda()
    base = [sys.executable, "train.py", "+experiment=gpu_smoke", f"run_dir={tmp_path}", "train.progress=false",
            "train.epochs=2"]
    first = subprocess.run(base + ["train.stop_after_epoch=1"], cwd=PROJECT, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    second = subprocess.run(base, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["train/resumed_from_epoch"] == 1 and len(m["test/acc_curve"]) == 2
