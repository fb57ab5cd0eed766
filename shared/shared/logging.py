"""Run directories and metrics files: the one logging path every project uses.

A run writes, under its run dir:
  config.yaml     the resolved config (what was actually run)
  metrics.jsonl   one JSON line per ``log()`` call, flushed at once (survives a crash or a kill)
  metrics.json    at ``finish()``: summary metrics + config, git sha, package versions, scale, paper_ref,
                  wall time, peak memory and status. On an exception inside ``with start_run(...)`` it is
                  still written, with ``status: failed`` and the traceback, so nothing logged is lost.
  run.log         stdlib logging of the run
W&B is a mirror only (``mode``: disabled | offline | online) and is never needed.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

WANDB_MODES = ("disabled", "offline", "online")
DEFAULT_PACKAGES = ("numpy", "torch", "jax", "flax", "transformers", "diffusers", "open_clip_torch",
                    "hydra-core", "omegaconf", "pot", "scikit-learn", "repro-shared")


def resolve_run_dir(cfg) -> Path:
    """A run's directory: ``cfg.run_dir``, or Hydra's output dir when it is null (written back into ``cfg`` so
    metrics.json records where the run went); created if missing."""
    if cfg.run_dir is None:
        from hydra.core.hydra_config import HydraConfig

        cfg.run_dir = HydraConfig.get().runtime.output_dir
    path = Path(cfg.run_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def git_sha(path: str | Path = ".") -> str | None:
    """The commit of the checkout holding ``path`` (suffixed ``-dirty`` when it has changes), or None."""
    try:
        cwd = str(Path(path).resolve())
        res = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        sha = res.stdout.strip()
        if res.returncode != 0 or not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names=DEFAULT_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (distribution names); absent ones are left out."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _jsonable(x: Any) -> Any:
    """Plain JSON values from numpy/torch scalars and arrays, dicts, lists and paths."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy / torch / jax arrays and scalars
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)  # JSON has no NaN/inf; keep them visible instead of writing invalid JSON
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def _config_dict(config: Any) -> dict:
    if config is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(config, DictConfig):
            # Hydra's own node is not part of the job config; skip it if a caller passes the full tree.
            return OmegaConf.to_container(config, resolve=True, throw_on_missing=False)
    except ImportError:
        pass
    return _jsonable(dict(config))


class Run:
    """One run: a directory, its config, its metric stream and its summary. Use ``start_run``."""

    def __init__(self, run_dir: str | Path, config: Any = None, *, wandb_mode: str = "disabled",
                 wandb_project: str = "papers-repro", name: str | None = None, scale: str | None = None,
                 paper_ref: str | None = None, packages=DEFAULT_PACKAGES):
        if wandb_mode not in WANDB_MODES:
            raise ValueError(f"logger wandb mode {wandb_mode!r} is not one of {WANDB_MODES} "
                             "(set logger.mode=disabled|offline|online)")
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = _config_dict(config)
        self.scale = scale if scale is not None else self.config.get("scale")
        self.paper_ref = paper_ref if paper_ref is not None else self.config.get("paper_ref")
        self.name = name or self.dir.name
        self._t0 = time.time()
        self._packages = packages
        self._finished = False
        self.last: dict[str, Any] = {}
        with open(self.dir / "config.yaml", "w") as f:
            yaml.safe_dump(self.config, f, sort_keys=False)
        self.logger = logging.getLogger(f"repro.{self.name}")
        self.logger.setLevel(logging.INFO)
        self._handler = logging.FileHandler(self.dir / "run.log")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger.addHandler(self._handler)
        self._jsonl = open(self.dir / "metrics.jsonl", "a")
        self.wandb = None
        if wandb_mode != "disabled":
            import wandb  # only imported when asked for: W&B is a mirror, never a requirement

            self.wandb = wandb.init(project=wandb_project, name=self.name, dir=str(self.dir),
                                    mode=wandb_mode, config=self.config, reinit="finish_previous")

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Append ``metrics`` (flat ``split/name`` keys) at ``step`` to metrics.jsonl, flushed at once."""
        row = {"step": step, "time": round(time.time() - self._t0, 3), **_jsonable(dict(metrics))}
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        self.last.update(row)
        if self.wandb is not None:
            self.wandb.log(dict(metrics), step=step)

    def finish(self, summary: Mapping[str, Any] | None = None, status: str = "completed",
               error: str | None = None) -> dict:
        """Write metrics.json (summary + provenance) and close the run; returns what was written.

        ``summary`` defaults to the last value of every logged metric.
        """
        if self._finished:
            return json.loads((self.dir / "metrics.json").read_text())
        summary = dict(summary) if summary is not None else {
            k: v for k, v in self.last.items() if k not in ("step", "time")}
        from shared.device import cuda_memory_summary

        record = {
            "status": status,
            "metrics": _jsonable(summary),
            "scale": self.scale,
            "paper_ref": self.paper_ref,
            "config": self.config,
            "git_sha": git_sha(self.dir) or git_sha(Path(__file__).parent),
            "packages": package_versions(self._packages),
            "host": platform.node(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "wall_time_s": round(time.time() - self._t0, 3),
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "cuda_memory": cuda_memory_summary(),
        }
        if error is not None:
            record["error"] = error
        tmp = self.dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(self.dir / "metrics.json")  # atomic: a reader never sees half a file
        scalars = {k: v for k, v in record["metrics"].items() if not isinstance(v, (list, dict))}  # no curves
        self.logger.info("run %s: %s, metrics %s", self.name, status, scalars)
        self._close(status)
        return record

    def _close(self, status: str) -> None:
        self._finished = True
        self._jsonl.close()
        self.logger.removeHandler(self._handler)
        self._handler.close()
        if self.wandb is not None:
            self.wandb.finish(exit_code=0 if status == "completed" else 1)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self._finished:
            if exc_type is None:
                self.finish()
            else:
                label = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
                self.finish(status=label, error="".join(traceback.format_exception(exc_type, exc, tb)))
        return False  # never swallow the exception


def start_run(run_dir: str | Path, config: Any = None, **kwargs) -> Run:
    """Start a run in ``run_dir`` (created); see ``Run`` for keyword arguments. Use as a context manager."""
    return Run(run_dir, config, **kwargs)


def read_metrics_jsonl(run_dir: str | Path) -> list[dict]:
    """All rows a run logged, in order (readable while the run is still going or after a crash)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_run(run_dir: str | Path) -> dict:
    """A finished run's record (``metrics.json``: status, metrics, config, ...); a directory without one is a named
    error (every project's eval.py shows runs through this)."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} holds no metrics.json: pass run_dir=<a finished train.py run directory>")
    return json.loads(path.read_text())
