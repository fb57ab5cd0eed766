import json

import pytest
import yaml

from shared import results
from shared.logging import start_run

SPEC = {
    "project": {"title": "Toy", "arxiv": "0000.00000", "table": "Table 1", "mini_claim": "a < b"},
    "source": {"arxiv": "0000.00000", "version": "v1", "where": "Table 1"},
    "metric": "test/kl",
    "metrics": ["test/kl", "test/tv"],
    "higher_is_better": False,
    "tolerance": 0.05,
    "keys": ["method.name"],
    "rows": [
        {"keys": {"method.name": "a"}, "scale": "mini", "values": {"test/kl": 1.0}, "verified": True},
        {"keys": {"method.name": "b"}, "scale": "mini", "values": {"test/kl": 9.0}, "verified": False},
    ],
    "claims": [
        {"name": "a beats b", "scale": "mini", "lhs": {"method.name": "a"}, "op": "<", "rhs": {"method.name": "b"}},
        {"name": "a small", "scale": "mini", "metric": "test/tv", "lhs": {"method.name": "a"}, "op": "<", "rhs": 0.5},
        {"name": "paper only", "scale": "paper", "lhs": {"method.name": "a"}, "op": ">", "rhs": 100},
    ],
}


def make_project(tmp_path, spec=SPEC, runs=()):
    (tmp_path / "results").mkdir(parents=True, exist_ok=True)
    (tmp_path / "results" / "paper.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    for i, (name, kl, tv) in enumerate(runs):
        run = start_run(tmp_path / "outputs" / "mini" / f"{name}_{i}", {"method": {"name": name}, "seed": i,
                                                                        "scale": "mini"})
        run.finish({"test/kl": kl, "test/tv": tv})
    return tmp_path


def test_aggregate_mean_std_n(tmp_path):
    proj = make_project(tmp_path, runs=[("a", 1.0, 0.1), ("a", 1.02, 0.3), ("b", 2.0, 0.2)])
    runs = results.find_runs(proj / "outputs" / "mini", "mini")
    agg = results.aggregate(runs, ["method.name"], ["test/kl", "test/tv"])
    assert agg[("a",)]["test/kl"].n == 2
    assert agg[("a",)]["test/kl"].mean == pytest.approx(1.01)
    assert agg[("a",)]["test/tv"].std == pytest.approx(0.1414213, rel=1e-5)  # sample std (ddof=1)
    assert agg[("b",)]["test/kl"].n == 1


def test_claims_held_and_table_marks_unverified(tmp_path):
    proj = make_project(tmp_path, runs=[("a", 1.0, 0.1), ("a", 1.02, 0.3), ("b", 2.0, 0.2)])
    md, claims = results.summarize(proj, "mini")
    assert [c["status"] for c in claims] == ["held", "held"]  # the paper-scale claim is not judged at mini
    assert "claims: 2/2 held" in md
    assert (proj / "results" / "mini.md").read_text() == md
    line_a = next(x for x in md.splitlines() if x.startswith("| a | test/kl"))
    line_b = next(x for x in md.splitlines() if x.startswith("| b | test/kl"))
    assert line_a.endswith("| yes |")          # verified and within tolerance 0.05
    assert "9*" in line_b and line_b.endswith("| – |")  # unverified: shown with *, never judged


def test_broken_and_missing_claims_fail_the_cli(tmp_path, capsys):
    proj = make_project(tmp_path, runs=[("a", 3.0, 0.1), ("b", 2.0, 0.2)])
    assert results.main([str(proj), "--check"]) == 1
    assert "claim broken: a beats b" in capsys.readouterr().err
    proj2 = make_project(tmp_path / "p2", runs=[("a", 1.0, 0.1)])
    md, claims = results.summarize(proj2, "mini")
    assert claims[0]["status"] == "missing"
    assert results.main([str(proj2), "--check"]) == 1
    assert results.main([str(proj2)]) == 0  # without --check it only renders
    assert results.main([str(proj2), "--check", "--allow-missing"]) == 0  # missing is allowed, nothing broken
    assert results.main([str(proj), "--check", "--allow-missing"]) == 1  # broken still fails


def test_a_nan_seed_breaks_the_claim_instead_of_vanishing(tmp_path):
    proj = make_project(tmp_path, runs=[("a", 1.0, 0.1), ("a", float("nan"), 0.1), ("b", 2.0, 0.2)])
    md, claims = results.summarize(proj, "mini")
    agg = results.aggregate(results.find_runs(proj / "outputs" / "mini"), ["method.name"], ["test/kl"])
    assert agg[("a",)]["test/kl"].n == 2  # the NaN seed is counted
    assert claims[0]["status"] == "broken"
    proj2 = make_project(tmp_path / "inf", runs=[("a", float("inf"), 0.1), ("b", 2.0, 0.2)])
    assert results.summarize(proj2, "mini")[1][0]["status"] == "broken"


def test_failed_runs_are_not_aggregated(tmp_path):
    proj = make_project(tmp_path, runs=[("a", 1.0, 0.1), ("b", 2.0, 0.2)])
    bad = start_run(proj / "outputs" / "mini" / "crashed", {"method": {"name": "a"}, "scale": "mini"})
    bad.finish({"test/kl": 100.0}, status="failed", error="boom")
    agg = results.aggregate(results.find_runs(proj / "outputs" / "mini"), ["method.name"], ["test/kl"])
    assert agg[("a",)]["test/kl"].mean == 1.0


@pytest.mark.parametrize("mutate, needle", [
    (lambda s: s.pop("metric"), "metric: missing required key"),
    (lambda s: s.update(typo=1), "unknown key(s) ['typo']"),
    (lambda s: s.update(higher_is_better="yes"), "higher_is_better: must be true or false"),
    (lambda s: s["rows"][0].update(keys={"model.name": "x"}), "rows[0].keys"),
    (lambda s: s["rows"][0].update(keys={}), "must map every field"),
    (lambda s: s["rows"][1].update(values={"test/kl": "9"}), "rows[1].values"),
    (lambda s: s["claims"][0].update(op="=="), "claims[0].op"),
    (lambda s: s["claims"][1].update(rhs="small"), "claims[1].rhs"),
    (lambda s: s["claims"][0].pop("lhs"), "claims[0].lhs: missing"),
    (lambda s: s.update(tolerance=-1), "tolerance"),
])
def test_bad_paper_yaml_names_the_key(tmp_path, mutate, needle):
    spec = json.loads(json.dumps(SPEC))
    mutate(spec)
    proj = make_project(tmp_path, spec)
    with pytest.raises(results.PaperYamlError) as e:
        results.load_paper_yaml(proj / "results" / "paper.yaml")
    assert needle in str(e.value) and "paper.yaml" in str(e.value)


def test_cli_reports_bad_yaml_with_exit_2(tmp_path, capsys):
    spec = dict(SPEC)
    spec.pop("keys")
    proj = make_project(tmp_path, spec)
    assert results.main([str(proj), "--check"]) == 2
    assert "keys: missing required key" in capsys.readouterr().err


def test_missing_paper_yaml(tmp_path):
    with pytest.raises(FileNotFoundError, match="results/paper.yaml"):
        results.load_paper_yaml(tmp_path / "results" / "paper.yaml")


def test_get_dotted():
    assert results.get_dotted({"a": {"b": 3}}, "a.b") == 3
    assert results.get_dotted({"a": {}}, "a.b", "d") == "d"


def test_paste_into_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:begin (generated) -->\nold table\n<!-- results:end -->\nafter\n")
    results.paste_into_readme(readme, "<!-- g -->\n# Results (mini scale)\n| a |\n")
    text = readme.read_text()
    assert "old table" not in text and "### Results (mini scale)" in text and text.endswith("after\n")
    results.paste_into_readme(readme, "<!-- g -->\n# Results (mini scale)\n| b |\n")  # idempotent markers
    assert readme.read_text().count("<!-- results:end -->") == 1 and "| b |" in readme.read_text()
    bad = tmp_path / "R2.md"
    bad.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        results.paste_into_readme(bad, "x")


def test_undocumented_keys_and_compose(tmp_path):
    from shared.testing import compose, undocumented_keys

    (tmp_path / "train.yaml").write_text("a: 1  # documented\nb: 2\nhydra:\n  run:\n    dir: x\nc:\n  d: 3\n")
    assert undocumented_keys(tmp_path) == ["train.yaml: b: 2", "train.yaml: d: 3"]
    cfg = compose(tmp_path, ["a=5"])
    assert cfg.a == 5 and "hydra" not in cfg


def test_check_experiment(tmp_path):
    from shared.testing import check_experiment

    (tmp_path / "method").mkdir()
    (tmp_path / "experiment").mkdir()
    (tmp_path / "method" / "a.yaml").write_text("name: a  # m\n")
    (tmp_path / "train.yaml").write_text("defaults:\n  - _self_\n  - method: a\nscale: mini  # s\npaper_ref: x  # p\n")
    (tmp_path / "experiment" / "good.yaml").write_text(
        "# @package _global_\nscale: paper\npaper_ref: T1\nhydra:\n  sweeper:\n    params:\n      method: a\n")
    (tmp_path / "experiment" / "typo.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      method: a,b\n")
    (tmp_path / "experiment" / "flat.yaml").write_text("# @package _global_\nscale: paper\n")
    assert check_experiment(tmp_path, "good", groups=("method",)).scale == "paper"
    with pytest.raises(AssertionError, match="'method', 'b'"):
        check_experiment(tmp_path, "typo", groups=("method",))
    with pytest.raises(AssertionError, match="sweeper.params"):
        check_experiment(tmp_path, "flat")


def _paired_project(tmp_path, runs):
    spec = {**SPEC, "rows": [], "claims": [{"name": "a < b in every seed", "scale": "mini", "lhs": {"method.name": "a"},
                                            "op": "<", "rhs": {"method.name": "b"}, "paired": "seed"}]}
    make_project(tmp_path, spec)
    for name, seed, kl in runs:
        run = start_run(tmp_path / "outputs" / "mini" / f"{name}_{seed}",
                        {"method": {"name": name}, "seed": seed, "scale": "mini"})
        run.finish({"test/kl": kl, "test/tv": 0.0})
    return results.summarize(tmp_path, "mini")


def test_paired_claim_needs_every_seed(tmp_path):
    # means say a < b (1.5 < 2.03), but seed 2 says otherwise: a paired claim is broken, 2 of 3 pairs
    md, claims = _paired_project(tmp_path / "x", [("a", 0, 1.0), ("b", 0, 2.0), ("a", 1, 1.0), ("b", 1, 2.0),
                                                  ("a", 2, 2.5), ("b", 2, 2.1)])
    assert claims[0]["status"] == "broken" and claims[0]["pairs"] == "2/3"
    assert claims[0]["lhs_value"] == pytest.approx(1.5) and "broken (2/3 pairs)" in md
    md, claims = _paired_project(tmp_path / "y", [("a", 0, 1.0), ("b", 0, 2.0), ("a", 1, 1.9), ("b", 1, 2.0)])
    assert claims[0]["status"] == "held" and claims[0]["pairs"] == "2/2"
    # a run without its partner: the pairing is not clean, so the claim cannot be judged
    md, claims = _paired_project(tmp_path / "z", [("a", 0, 1.0), ("b", 0, 2.0), ("a", 1, 1.0)])
    assert claims[0]["status"] == "missing"


def test_paired_claim_min_pairs(tmp_path):
    spec = {**SPEC, "rows": [], "claims": [{"name": "a < b", "lhs": {"method.name": "a"}, "op": "<",
                                            "rhs": {"method.name": "b"}, "paired": "seed", "min_pairs": 3}]}
    make_project(tmp_path, spec)
    for name, seed, kl in [("a", 0, 1.0), ("b", 0, 2.0), ("a", 1, 1.0), ("b", 1, 2.0)]:
        start_run(tmp_path / "outputs" / "mini" / f"{name}_{seed}",
                  {"method": {"name": name}, "seed": seed, "scale": "mini"}).finish({"test/kl": kl})
    assert results.summarize(tmp_path, "mini")[1][0]["status"] == "missing"  # 2 pairs < 3


def test_paired_claim_must_name_a_field(tmp_path):
    spec = {**SPEC, "claims": [{"name": "c", "lhs": {"method.name": "a"}, "op": "<", "rhs": 3, "paired": "seed"}]}
    make_project(tmp_path, spec)
    with pytest.raises(results.PaperYamlError, match="paired"):
        results.load_paper_yaml(tmp_path / "results" / "paper.yaml")


def test_claim_factor_scales_the_rhs(tmp_path):
    spec = {**SPEC, "rows": [], "claims": [{"name": "b >= 10x a", "lhs": {"method.name": "b"}, "op": ">",
                                            "rhs": {"method.name": "a"}, "factor": 10}]}
    make_project(tmp_path, spec)
    for name, kl in [("a", 0.1), ("b", 2.0)]:
        start_run(tmp_path / "outputs" / "mini" / name, {"method": {"name": name}, "seed": 0, "scale": "mini"}
                  ).finish({"test/kl": kl})
    c = results.summarize(tmp_path, "mini")[1][0]
    assert c["status"] == "held" and c["rhs_value"] == pytest.approx(1.0)  # 2.0 > 10 x 0.1
    spec["claims"][0]["factor"] = 30
    make_project(tmp_path, spec)
    assert results.summarize(tmp_path, "mini")[1][0]["status"] == "broken"  # 2.0 < 30 x 0.1
    spec["claims"][0]["factor"] = -1
    make_project(tmp_path, spec)
    with pytest.raises(results.PaperYamlError, match="factor"):
        results.load_paper_yaml(tmp_path / "results" / "paper.yaml")
