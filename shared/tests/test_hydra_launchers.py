"""The shared Hydra plumbing: house settings, the Slurm launcher composing, submitit_local really running."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

APP = Path(__file__).parent / "hydra_app"


def _compose(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(APP / "configs"), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_house_settings():
    cfg = _compose([])
    assert cfg.hydra.job.chdir is False
    assert "experiment" in cfg.hydra.job.config.override_dirname.exclude_keys


def test_slurm_launcher_composes(monkeypatch):
    monkeypatch.setenv("SLURM_PARTITION", "gpu-long")
    monkeypatch.setenv("SLURM_ACCOUNT", "lab42")
    cfg = _compose(["+launcher=slurm"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu-long" and launcher.account == "lab42"
    assert launcher.gpus_per_node == 1 and launcher.max_num_timeout > 0
    OmegaConf.to_container(launcher, resolve=True)  # every interpolation resolves


def test_slurm_launcher_local_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_PARTITION", raising=False)
    cfg = _compose(["+launcher=slurm", "+local={partition: debug, mem_gb: 16}"])
    assert cfg.hydra.launcher.partition == "debug" and cfg.hydra.launcher.mem_gb == 16
    assert _compose(["+launcher=slurm"]).hydra.launcher.partition is None


def test_unknown_key_is_an_error():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="typo"):
        _compose(["typo=1"])


def test_slurm_cfg_job_from_the_command_line():
    out = subprocess.run([sys.executable, "app.py", "+launcher=slurm", "--cfg", "hydra"], cwd=APP,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "submitit_slurm" in out.stdout


@pytest.mark.slow
def test_submitit_local_multirun_runs_two_jobs(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(APP / "app.py"), "-m", "+launcher=local", "x=2,3",
                          f"hydra.sweep.dir={tmp_path}"], cwd=APP, capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    done = sorted(json.loads(p.read_text())["x"] for p in tmp_path.rglob("done.json"))
    assert done == [2, 3]
    assert len(list(tmp_path.rglob("metrics.json"))) == 2
    assert list((tmp_path / ".submitit").iterdir()), "submitit logs land under the sweep dir"


def test_a_seed_only_sweep_stays_under_the_sweep_dir(tmp_path):
    # with nothing but the (excluded) seed varying, override_dirname is empty: the subdir must not become /seed=N
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(APP / "app.py"), "-m", "seed=7", f"hydra.sweep.dir={tmp_path}"],
                         cwd=APP, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "seed=7" / "done.json").exists()
