"""Helpers the projects' tests share: compose a project's Hydra config in-process, and find config keys
without the one-line comment CONVENTIONS section 3 asks for."""
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

