import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(1)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def compose_cfg(overrides, run_dir=None):
    """The train config as ``python train.py <overrides>`` sees it, with ``run_dir`` set (no Hydra run)."""
    from omegaconf import open_dict

    from shared.testing import compose

    cfg = compose(CONFIGS, list(overrides))
    with open_dict(cfg):
        cfg.run_dir = str(run_dir) if run_dir is not None else None
    return cfg
