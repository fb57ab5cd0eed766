import random

import numpy as np
import pytest

from shared import device


def test_get_device_choices():
    torch = pytest.importorskip("torch")
    assert device.get_device("cpu") == torch.device("cpu")
    auto = device.get_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        device.get_device("tpu")


def test_cuda_request_without_gpu_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        device.get_device("cuda")


def test_autocast_dtype_cpu_is_none():
    pytest.importorskip("torch")
    assert device.autocast_dtype("cpu") is None


def test_seed_everything_repeats_python_numpy_torch():
    torch = pytest.importorskip("torch")

    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    device.seed_everything(123)
    a = draw()
    device.seed_everything(123)
    assert draw() == a
    device.seed_everything(124)
    assert draw() != a


def test_seed_everything_does_not_import_jax_unasked():
    import subprocess
    import sys

    code = "import sys; from shared.device import seed_everything; k = seed_everything(3)['jax_key']; " \
           "print(k is None, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_seed_everything_jax_key_when_asked():
    jax = pytest.importorskip("jax")
    out = device.seed_everything(7, jax=True)
    assert (np.asarray(out["jax_key"]) == np.asarray(jax.random.PRNGKey(7))).all()


def test_on_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_JOBID", raising=False)
    assert not device.on_slurm()
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert device.on_slurm()


def test_cuda_memory_summary_matches_gpu_count():
    torch = pytest.importorskip("torch")
    assert len(device.cuda_memory_summary()) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_limit_threads_respects_user_setting(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert device.limit_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert device.limit_threads() == 1 and torch.get_num_threads() == 1  # our default when unset
    finally:
        torch.set_num_threads(before)


@pytest.mark.gpu
def test_gpu_device_and_memory():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    d = device.get_device("cuda")
    x = torch.randn(1024, 1024, device=d)
    with torch.autocast("cuda", dtype=device.autocast_dtype(d)):
        y = x @ x
    assert y.dtype in (torch.bfloat16, torch.float16)
    assert device.cuda_memory_summary()["cuda:0"]["peak_allocated_mib"] > 0
