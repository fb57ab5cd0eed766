"""The pipeline: a default train.py run writes metrics.json (OpenSpiel version recorded) and eval.py shows it; the
common-payoff study (Theorem 1) and a sampled run; bad input is named."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from shared.testing import run_config
from update_equivalence.pipeline import run, show_run
from update_equivalence.report import plot_exploitability

PROJECT = Path(__file__).resolve().parents[1]


def _run(tmp_path, overrides):
    return run_config(run, PROJECT / "configs", overrides, tmp_path)


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


def test_blueprint_study_then_search_on_it(tmp_path):
    m = _run(tmp_path / "bp", ["study=blueprint", "train_blueprint.iterations=3", "train_blueprint.games_per_iter=64",
                               "train_blueprint.hidden=32", "train_blueprint.eval_games=20",
                               "train_blueprint.exact_eval=true"])
    assert m["blueprint/iterations"] == 3 and 0 < m["blueprint/exploitability"] < 1
    assert (tmp_path / "bp" / "blueprint.pt").exists() and (tmp_path / "bp" / "checkpoint.pt").exists()
    path = str(tmp_path / "bp" / "blueprint.pt")
    s = _run(tmp_path / "s", ["study=sampled", "blueprint.kind=net", f"blueprint.path={path}", "sampled.games=4",
                              "sampled.n_particles=2", "sampled.n_rollouts=1"])
    assert s["h2h/games"] == 4
    b = _run(tmp_path / "b", ["study=best_response", "br.opponent=blueprint", "blueprint.kind=net",
                              f"blueprint.path={path}", "br.steps=300", "br.learn_start=100", "br.eval_episodes=50",
                              "br.exact_eval=true"])
    assert b["exact/exploitability"] == pytest.approx(m["blueprint/exploitability"])


def test_hanabi_selfplay_study(tmp_path):
    bp = tmp_path / "bp"
    _run(bp, ["+experiment=mini_hanabi_blueprint", "train_blueprint.iterations=2", "train_blueprint.games_per_iter=16"])
    m = _run(tmp_path / "s", ["+experiment=mini_hanabi", f"blueprint.path={bp / 'blueprint.pt'}", "selfplay.games=3",
                              "sampled.n_particles=2", "sampled.n_rollouts=1"])
    assert m["selfplay/games"] == 3 and 0 <= m["selfplay/search"] <= 4 and m["search/fallbacks"] == 0
    assert m["selfplay/gain"] == pytest.approx(m["selfplay/search"] - m["selfplay/blueprint"])
    with pytest.raises(ValueError, match="blueprint.path="):
        _run(tmp_path / "x", ["+experiment=mini_hanabi", "blueprint.path=null"])
    with pytest.raises(ValueError, match="not a common-payoff game"):
        _run(tmp_path / "y", ["study=selfplay"])
    with pytest.raises(ValueError, match="belief=enumerate"):
        _run(tmp_path / "z", ["+experiment=mini_hanabi", f"blueprint.path={bp / 'blueprint.pt'}",
                              "sampled.belief=rejection"])
