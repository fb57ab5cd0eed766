"""Helpers the projects' tests share: compose a project's Hydra config in-process, run a pipeline on it and read
its metrics, run a project script in a subprocess, and find config keys without the one-line comment CONVENTIONS
section 3 asks for."""
from __future__ import annotations

import re
from pathlib import Path


def compose(config_dir: str | Path, overrides=(), name: str = "train", hydra: bool = False):
    """The config ``name`` of ``config_dir`` with ``overrides``, as ``python train.py <overrides>`` would see it
    (``hydra=True`` keeps the hydra node, e.g. to inspect the launcher)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
        return hydra_compose(name, overrides=list(overrides), return_hydra_config=hydra)


def run_config(run, config_dir: str | Path, overrides, run_dir: str | Path, **set_keys) -> dict:
    """Compose ``config_dir``'s train config with ``overrides``, set ``run_dir`` (and any dotted ``set_keys``,
    e.g. ``{"zoo.cache_dir": ...}`` passed as ``**{...}``), call the project's ``run(cfg)`` and return the final
    metrics of its ``metrics.json``."""
    import json

    from omegaconf import OmegaConf, open_dict

    cfg = compose(config_dir, overrides)
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)
        for key, value in set_keys.items():
            OmegaConf.update(cfg, key, value)
    run(cfg)
    return json.loads((Path(run_dir) / "metrics.json").read_text())["metrics"]


def run_script(project_dir: str | Path, args, timeout: int = 900, env: dict | None = None):
    """``python <args>`` in ``project_dir`` with one CPU thread and W&B off (plus ``env``); fails the test with
    the output's tail when the exit status is not 0. Returns the completed process."""
    import os
    import subprocess
    import sys

    full = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", **(env or {})}
    out = subprocess.run([sys.executable, *args], cwd=project_dir, capture_output=True, text=True, timeout=timeout,
                         env=full)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def undocumented_keys(config_dir: str | Path) -> list[str]:
    """``file: key line`` for every key with a value but no ``#`` comment (Hydra's own ``hydra:`` and
    ``defaults:`` blocks excepted)."""
    found = []
    for path in sorted(Path(config_dir).rglob("*.yaml")):
        in_hydra = False
        for line in path.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith(("#", "-")):
                continue
            if not line.startswith(" "):
                in_hydra = line.startswith(("hydra:", "defaults:"))
            if in_hydra or not re.match(r"^\s*[A-Za-z_][\w.]*:\s*\S", line):
                continue
            if "#" not in line:
                found.append(f"{path.relative_to(config_dir)}: {line.strip()}")
    return found


def check_experiment(config_dir: str | Path, experiment: str, launcher: str | None = None, groups=()):
    """The house checks of one ``configs/experiment/<experiment>.yaml`` (optionally with ``+launcher=...``):
    it composes and resolves, names its ``scale`` and ``paper_ref``, holds its table's grid in
    ``hydra.sweeper.params``, every swept choice of ``groups`` exists as a config file, and the Slurm launcher
    is selected when asked. Returns the composed config (hydra node included) for project-specific checks."""
    from omegaconf import OmegaConf

    config_dir = Path(config_dir)
    cfg = compose(config_dir, [f"+experiment={experiment}"] + ([f"+launcher={launcher}"] if launcher else []),
                  hydra=True)
    assert cfg.scale in ("mini", "paper") and cfg.paper_ref, "an experiment names its scale and paper_ref"
    OmegaConf.to_container(OmegaConf.create({k: v for k, v in cfg.items() if k != "hydra"}), resolve=True)
    params = cfg.hydra.sweeper.params
    assert params, "an experiment is a table: its grid sits in hydra.sweeper.params"
    for group in groups:
        for choice in str(params.get(group, "")).split(","):
            assert not choice or (config_dir / group / f"{choice}.yaml").exists(), (group, choice)
    if launcher == "slurm":
        assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    return cfg

