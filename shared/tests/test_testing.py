"""The test helpers projects share: run_config composes, sets the run dir and dotted keys, runs and reads the
metrics; run_script runs a script single-threaded and fails with the output's tail."""
import json
from pathlib import Path

import pytest

from shared.testing import run_config, run_script

CONFIGS = Path(__file__).parent / "hydra_app" / "configs"


def test_run_config_sets_run_dir_and_keys(tmp_path):
    seen = {}

    def run(cfg):  # a stand-in pipeline: records what it was given, writes metrics.json
        seen.update(x=cfg.x, seed=cfg.seed, run_dir=cfg.run_dir)
        (Path(cfg.run_dir) / "metrics.json").write_text(json.dumps({"metrics": {"out": cfg.x * 2}}))

    m = run_config(run, CONFIGS, ["x=3"], tmp_path, seed=7)
    assert m == {"out": 6} and seen == {"x": 3, "seed": 7, "run_dir": str(tmp_path)}


def test_run_script_passes_env_and_fails_loudly(tmp_path):
    out = run_script(tmp_path, ["-c", "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['EXTRA'])"],
                     timeout=60, env={"EXTRA": "yes"})
    assert out.stdout.split() == ["1", "yes"]
    with pytest.raises(AssertionError, match="boom"):
        run_script(tmp_path, ["-c", "raise SystemExit('boom')"], timeout=60)
