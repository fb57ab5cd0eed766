import json
import math

import numpy as np
import pytest

from shared.logging import git_sha, package_versions, read_metrics_jsonl, read_run, start_run


def test_run_writes_config_jsonl_and_metrics_json(tmp_path):
    cfg = {"model": {"name": "tiny"}, "scale": "mini", "paper_ref": "Table 3", "seed": 1}
    with start_run(tmp_path / "run", cfg) as run:
        run.log({"train/loss": np.float32(0.5)}, step=0)
        run.log({"train/loss": 0.25, "val/acc": 0.9}, step=1)
    rows = read_metrics_jsonl(tmp_path / "run")
    assert [r["step"] for r in rows] == [0, 1]
    assert rows[0]["train/loss"] == pytest.approx(0.5)
    rec = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rec["status"] == "completed"
    # summary defaults to the last value of each logged metric
    assert rec["metrics"] == {"train/loss": 0.25, "val/acc": 0.9}
    assert rec["scale"] == "mini" and rec["paper_ref"] == "Table 3"
    assert rec["config"]["model"]["name"] == "tiny"
    assert rec["packages"]["numpy"] == np.__version__
    assert rec["wall_time_s"] >= 0 and rec["peak_memory_mb"] > 0
    assert (tmp_path / "run" / "config.yaml").read_text().startswith("model:")


def test_explicit_summary_and_nonfinite_values(tmp_path):
    run = start_run(tmp_path, {"scale": "paper"})
    rec = run.finish({"test/ppl": float("inf"), "test/acc": np.float64(0.5)})
    assert rec["metrics"] == {"test/ppl": "inf", "test/acc": 0.5}
    json.loads((tmp_path / "metrics.json").read_text())  # valid JSON despite inf


def test_crash_keeps_logged_metrics_and_records_exception(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with start_run(tmp_path / "r", {"scale": "mini"}) as run:
            run.log({"train/loss": 1.0}, step=0)
            run.log({"train/loss": 0.5}, step=1)
            raise ZeroDivisionError("boom")
    rec = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert rec["status"] == "failed"
    assert "ZeroDivisionError" in rec["error"]
    assert rec["metrics"] == {"train/loss": 0.5}
    assert len(read_metrics_jsonl(tmp_path / "r")) == 2


def test_bad_wandb_mode_names_the_fix(tmp_path):
    with pytest.raises(ValueError, match="logger.mode=disabled"):
        start_run(tmp_path, {}, wandb_mode="on")


def test_wandb_offline_needs_no_network(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    with start_run(tmp_path / "run", {"lr": 0.1}, wandb_mode="offline", wandb_project="test") as run:
        run.log({"train/loss": 1.0}, step=0)
    assert (tmp_path / "run" / "metrics.json").exists()
    offline = list((tmp_path / "run").rglob("offline-run-*"))
    assert offline, "wandb offline mode should write an offline-run dir inside the run dir"


def test_git_sha_outside_a_repo_is_none(tmp_path):
    assert git_sha(tmp_path) is None


def test_package_versions_skips_missing():
    v = package_versions(["numpy", "surely-not-a-package-xyz"])
    assert "numpy" in v and "surely-not-a-package-xyz" not in v and v["python"].startswith("3.")


def test_finish_twice_is_idempotent(tmp_path):
    run = start_run(tmp_path, {})
    a = run.finish({"x": 1.0})
    b = run.finish({"x": 2.0})
    assert a["metrics"] == b["metrics"] == {"x": 1.0}
    assert not math.isnan(a["wall_time_s"])


def test_checkpoint_round_trip_and_atomic_write(tmp_path):
    import torch

    from shared.checkpoint import load_state, save_state

    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(7)
    assert load_state(tmp_path / "none.pt", g, model=lin) == 0
    save_state(tmp_path / "c.pt", 5, g, model=lin, opt=opt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"], "no temporary file left behind"
    expected = torch.rand(3, generator=g)
    lin2, g2 = torch.nn.Linear(3, 2), torch.Generator()
    assert load_state(tmp_path / "c.pt", g2, model=lin2, opt=torch.optim.SGD(lin2.parameters(), lr=0.1)) == 5
    assert torch.equal(lin2.weight, lin.weight) and torch.equal(torch.rand(3, generator=g2), expected)


def test_resolve_run_dir_uses_the_config_or_hydra(tmp_path):
    from omegaconf import OmegaConf

    from shared.logging import resolve_run_dir

    cfg = OmegaConf.create({"run_dir": str(tmp_path / "a" / "b")})
    assert resolve_run_dir(cfg) == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    with pytest.raises(ValueError):  # no run_dir and no Hydra app running: Hydra says it is not initialised
        resolve_run_dir(OmegaConf.create({"run_dir": None}))


def test_read_run_returns_the_record_or_names_the_fix(tmp_path):
    with start_run(tmp_path / "r", {"a": 1}) as run:
        run.finish({"test/acc": 0.5})
    rec = read_run(tmp_path / "r")
    assert rec["metrics"]["test/acc"] == 0.5 and rec["config"]["a"] == 1
    with pytest.raises(FileNotFoundError, match="run_dir=<a finished train.py run directory>"):
        read_run(tmp_path / "nothing")
