"""Devices, mixed precision, seeding and cluster detection, shared by every project.

torch and jax are imported lazily: a JAX-only project (epac) or a plain-numpy tool can use this module
without paying for (or even having) the other framework.
"""
from __future__ import annotations

import importlib.util
import os
import random
import sys

import numpy as np

_CHOICES = ("auto", "cpu", "cuda")


def _have(module: str) -> bool:
    return module in sys.modules or importlib.util.find_spec(module) is not None


def get_device(preference: str = "auto"):
    """Return a ``torch.device`` from ``"auto" | "cpu" | "cuda" | "cuda:N"``.

    ``auto`` picks CUDA when a GPU is visible, else the CPU. Asking for CUDA on a machine without one is an
    error that says so, instead of silently running a paper-scale job on the CPU.
    """
    import torch

    pref = str(preference).lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" or pref.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={preference!r} was asked for but torch sees no CUDA GPU "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). "
                "Run on a GPU node, or pass device=cpu / device=auto."
            )
        return torch.device(pref)
    raise ValueError(f"unknown device {preference!r}; use one of {_CHOICES} or 'cuda:N'")


def autocast_dtype(device):
    """The mixed-precision dtype for ``device``: bf16 where the GPU supports it, else fp16; None on CPU.

    None means "run in float32" (CPU autocast is slower than fp32 for the small models our minis use).
    """
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def seed_everything(seed: int, deterministic: bool = False, jax: bool | None = None) -> dict:
    """Seed python, numpy, torch (CPU and CUDA) and return a JAX key for ``seed`` when JAX is in use.

    Returns ``{"seed": seed, "jax_key": key_or_None}``: JAX has no global RNG, so the caller threads the key.
    ``jax=None`` makes the key only if jax is already imported (a torch project must not pay for importing
    jax, which also grabs GPU memory on a GPU node); ``jax=True`` imports it.
    ``deterministic=True`` also asks torch for deterministic kernels (slower; for bit-exact resume tests).
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if _have("torch"):
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
    key = None
    if jax or (jax is None and "jax" in sys.modules):
        import jax as _jax

        key = _jax.random.PRNGKey(seed)
    return {"seed": seed, "jax_key": key}


def cuda_memory_summary() -> dict:
    """Peak and current CUDA memory in MiB per visible GPU (empty dict when there is no GPU)."""
    if not _have("torch"):
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    mib = 2**20
    return {
        f"cuda:{i}": {
            "name": torch.cuda.get_device_name(i),
            "allocated_mib": torch.cuda.memory_allocated(i) / mib,
            "peak_allocated_mib": torch.cuda.max_memory_allocated(i) / mib,
            "total_mib": torch.cuda.get_device_properties(i).total_memory / mib,
        }
        for i in range(torch.cuda.device_count())
    }


def on_slurm() -> bool:
    """True inside a Slurm job (sbatch/srun/submitit), judged by the job id Slurm exports."""
    return bool(os.environ.get("SLURM_JOB_ID") or os.environ.get("SLURM_JOBID"))


def limit_threads(n: int | None = None) -> int:
    """Cap BLAS/OpenMP/torch threads (default: ``OMP_NUM_THREADS`` or 1) and return the cap.

    On our 2 shared cores, one thread is up to 100x faster for small models than letting two processes'
    thread pools fight (see shared/papers/environment.md). A user's explicit ``OMP_NUM_THREADS`` wins.
    """
    n = int(n or os.environ.get("OMP_NUM_THREADS") or 1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    if _have("torch"):
        import torch

        torch.set_num_threads(n)
    return n
