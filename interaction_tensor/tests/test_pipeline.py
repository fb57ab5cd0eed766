"""The pipeline on tiny settings: train.py / eval.py, every study and data source, named errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from interaction_tensor.pipeline import run, show_run
from shared.testing import run_config

PROJECT = Path(__file__).resolve().parents[1]
TINY = ["ensemble.n_models=4", "ensemble.epochs=5", "omega.k=8"]


def test_train_py_and_eval_py(tmp_path):
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}/r", *TINY], cwd=PROJECT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())["metrics"]
    assert 0 < m["gde/test_error"] < 1 and m["gde/cace_slack"] >= 0 and m["omega/features"] > 0
    assert (tmp_path / "r" / "omega.png").exists() and (tmp_path / "r" / "artefacts.pt").exists()
    assert show_run(OmegaConf.create({"run_dir": str(tmp_path / "r")}))["gde/test_error"] == m["gde/test_error"]


def test_framework_and_synthetic_studies(tmp_path):
    m = run_config(run, PROJECT / "configs", ["study=framework", "framework.mc_models=20",
                                              "framework.mc_points=500"], tmp_path / "f")
    assert m["framework/points"] == 30 and m["framework/max_abs_diff_acc"] < 0.05 and m["framework/min_gap"] >= 0
    assert (tmp_path / "f" / "framework.png").exists()
    for setting in ("broken", "coupled"):
        m = run_config(run, PROJECT / "configs", TINY + ["data=synthetic", f"setting={setting}",
                                                         "omega.enabled=false"], tmp_path / setting)
        assert 0 <= m["gde/rare_error"] <= 1 and m["gde/cace_slack"] >= 0


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="study="):
        run_config(run, PROJECT / "configs", ["study=train"], tmp_path / "a")
    with pytest.raises(ValueError, match="exceeds"):
        run_config(run, PROJECT / "configs", TINY[:-1] + ["omega.k=40"], tmp_path / "b")
    with pytest.raises(ValueError, match="subsample"):
        run_config(run, PROJECT / "configs", TINY + ["ensemble.subsample=1.5"], tmp_path / "c")


def test_members_then_analyze_then_the_gde_breaking_subset(tmp_path):
    # paper-scale code path on CIFAR-shaped random data: two ResNet18 members (1 step each), extracted on train +
    # test, analysed (GDE, Omega), the GDE-breaking subset written and a member trained on it
    members = tmp_path / "members"
    base = ["data=random", "data.n_random=48", "member.max_steps=1", "member.batch=16", f"member.out_dir={members}"]
    for seed in (0, 1):
        m = run_config(run, PROJECT / "configs", base + ["study=member", "member.extract_on=all", f"seed={seed}"],
                       tmp_path / f"m{seed}")
        assert m["member/points"] == 96
    subset = tmp_path / "subset.pt"
    m = run_config(run, PROJECT / "configs", ["study=analyze", f"analyze.members_dir={members}", "omega.k=8",
                                              f"analyze.write_subset={subset}"], tmp_path / "a")
    assert m["data/models"] == 2 and m["omega/features"] > 0 and m["gde/cace_slack"] >= 0
    assert 0 < m["gde_break/train_points"] <= 48 and subset.exists()
    m = run_config(run, PROJECT / "configs", base + ["study=member", f"member.subset={subset}", "seed=2",
                                                     f"member.out_dir={tmp_path / 'broken'}"], tmp_path / "b")
    assert (tmp_path / "broken" / "member_2.pt").exists()
    with pytest.raises(FileNotFoundError, match="study=member"):
        run_config(run, PROJECT / "configs", ["study=analyze", f"analyze.members_dir={tmp_path / 'none'}"],
                   tmp_path / "c")
