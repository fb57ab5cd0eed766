"""The pipeline: a default train.py run writes metrics.json (OpenSpiel version recorded) and eval.py shows it; the
common-payoff study (Theorem 1) and a sampled run; bad input is named."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from shared.testing import compose
from update_equivalence.pipeline import run, show_run
from update_equivalence.report import plot_exploitability

PROJECT = Path(__file__).resolve().parents[1]


def _run(tmp_path, overrides):
    cfg = compose(PROJECT / "configs", overrides)
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
    run(cfg)
    return json.loads((tmp_path / "metrics.json").read_text())["metrics"]


def test_train_py_writes_metrics_and_eval_shows_them(tmp_path):
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}", "method.eta=0.5"], cwd=PROJECT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["env/openspiel"] == "2.0.2" and m["env/game"] == "kuhn_poker()"
    assert m["blueprint/exploitability"] == pytest.approx(0.4583, abs=1e-4)
    assert m["search/exploitability"] == pytest.approx(0.2264, abs=1e-4) and m["delta/exploitability"] < 0
    shown = show_run(OmegaConf.create({"run_dir": str(tmp_path)}))
    assert shown["game"] == "kuhn_poker" and shown["search/exploitability"] == m["search/exploitability"]


def test_greedy_method_records_its_infinite_step_and_plot(tmp_path):
    m = _run(tmp_path / "g", ["method=greedy", "method.eta=3", "game=leduc_poker"])
    assert m["search/exploitability"] == pytest.approx(3.0667, abs=1e-4)  # argmax q
    rec = json.loads((tmp_path / "g" / "metrics.json").read_text())["config"]["method"]
    assert rec["eta"] == float("inf") and rec["alpha"] == 0.0  # the step it took, not the one typed
    _run(tmp_path / "m", ["method.eta=0.5", "game=leduc_poker"])
    from shared.results import find_runs

    assert plot_exploitability(find_runs(tmp_path), tmp_path / "f.png") == ["leduc_poker"]


def test_common_payoff_study(tmp_path):
    m = _run(tmp_path, ["+experiment=mini_common", "common.blueprints=20", "method.eta=1.0"])
    assert m["common/improved_frac"] == 1.0 and m["common/mean_gain"] > 0


def test_sampled_run(tmp_path):
    m = _run(tmp_path, ["+experiment=mini_sampled", "game=phantom_ttt", "sampled.games=2", "sampled.n_particles=2",
                        "sampled.n_rollouts=1"])
    assert m["h2h/games"] == 2 and m["speed/sec_per_move"] > 0


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown or malformed OpenSpiel game"):
        _run(tmp_path / "a", ["game=kuhn"])
    with pytest.raises(ValueError, match="not a common-payoff game"):
        _run(tmp_path / "b", ["study=common_payoff"])
    with pytest.raises(ValueError, match="study="):
        _run(tmp_path / "c", ["study=pbs"])
    with pytest.raises(ValueError, match="two-player zero-sum"):
        _run(tmp_path / "d", ["game=tiny_hanabi"])
    with pytest.raises(ValueError, match="two-player zero-sum"):  # checked before any training
        _run(tmp_path / "e", ["game=tiny_hanabi", "study=best_response", "br.opponent=sampled_search"])
    with pytest.raises(ValueError, match="method=mds is plain mirror descent"):
        _run(tmp_path / "f", ["method=mds", "method.alpha=0.5"])
