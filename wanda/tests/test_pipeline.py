"""The entry points on a tiny model trained for a few steps (its own cache), and the hub-model path."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shared.testing import compose
from wanda.pipeline import evaluate_saved, run

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def tiny(cache, *extra):
    return [f"model.cache_dir={cache}", "model.arch.layers=2", "model.arch.hidden=64", "model.arch.intermediate=128",
            "model.train.steps=20", "data.nsamples=16", "progress=false", *extra]


def cfg_for(*overrides, name="train"):
    return compose(PROJECT / "configs", overrides, name)


def metrics(run_dir):
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def test_default_train_py_writes_metrics_json(tmp_path, cache):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}", *tiny(cache)], cwd=PROJECT,
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rec = metrics(tmp_path)
    m = rec["metrics"]
    assert rec["status"] == "completed" and rec["scale"] == "mini"
    assert m["achieved/sparsity"] == 0.5 and m["test/ppl"] > m["test/ppl_dense"] > 1
    per_layer = json.loads((tmp_path / "sparsity.json").read_text())
    assert per_layer["model.layers.0.mlp.down_proj"] == 0.5 and per_layer["overall"] == 0.5
    assert list((cache).glob("tiny_llama_*/config.json")), "the trained tiny model is cached"


@pytest.mark.parametrize("method,setting", [("magnitude", "nm24"), ("sparsegpt", "nm48"), ("wanda_variant", "u60"),
                                            ("wanda_owl", "u70"), ("dense", "u50"), ("magnitude_row", "u50")])
def test_methods_and_settings(tmp_path, cache, method, setting):
    ppl = run(cfg_for(f"method={method}", f"setting={setting}", f"run_dir={tmp_path}", *tiny(cache)))
    m = metrics(tmp_path)["metrics"]
    assert ppl == m["test/ppl"] and ppl > 1
    if method == "dense":
        assert m["achieved/sparsity"] == 0
    elif method == "wanda_owl":
        assert abs(m["achieved/sparsity"] - 0.7) < 0.02 and len(m["method/owl_block_sparsity"]) == 2
    else:
        assert abs(m["achieved/sparsity"] - (0.6 if setting == "u60" else 0.5)) < 0.01


def test_save_pruned_and_eval_py(tmp_path, cache):
    run(cfg_for("save_pruned=true", f"run_dir={tmp_path}", *tiny(cache)))
    out = evaluate_saved(cfg_for(f"model_path={tmp_path / 'pruned'}", "device=cpu", name="eval"))
    assert out["test/ppl"] == pytest.approx(metrics(tmp_path)["metrics"]["test/ppl"], rel=1e-4)
    assert out["achieved/sparsity"] == 0.5


def test_hub_model_path_with_local_data(tmp_path, saved_llama):
    """The paper-scale path (from_pretrained + tokenizer + C4/WikiText loaders) on a local tiny model and files."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = ("the quick brown fox jumps over the lazy dog " * 20 + "\n") * 40
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel()
    tk.train_from_iterator([text], trainers.BpeTrainer(vocab_size=128, special_tokens=["<unk>"]))
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>").save_pretrained(saved_llama)
    c4 = tmp_path / "c4.jsonl"
    c4.write_text("\n".join(json.dumps({"text": text[i:] + text}) for i in range(0, 200, 7)))
    wiki = tmp_path / "wiki.test.raw"
    wiki.write_text(text * 3)
    ppl = run(cfg_for("model=llama2_7b", f"model.path={saved_llama}", "model.dtype=float32", "model.device_map=null",
                      "model.seqlen=32", "data=c4_wikitext", f"data.calib_path={c4}", f"data.eval_path={wiki}",
                      "data.nsamples=8", f"run_dir={tmp_path / 'run'}", "device=cpu", "progress=false"))
    m = metrics(tmp_path / "run")["metrics"]
    assert m["data/calib_shape"] == [8, 32] and m["achieved/sparsity"] == 0.5 and ppl == m["test/ppl"]


def test_clear_errors(tmp_path, cache):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        run(cfg_for("model=llama2_7b", f"model.path={tmp_path / 'nothing'}", "data=c4_wikitext",
                    f"run_dir={tmp_path / 'a'}", "device=cpu"))
    assert metrics(tmp_path / "a")["status"] == "failed"
    with pytest.raises(ValueError, match="set sparsity=0.5"):
        run(cfg_for("setting=nm24", "setting.sparsity=0.6", f"run_dir={tmp_path / 'b'}", *tiny(cache)))
    with pytest.raises(ValueError, match="byte-level"):
        run(cfg_for("data=c4_wikitext", f"run_dir={tmp_path / 'c'}", *tiny(cache)))


def test_semi_structured_export_refuses_what_cannot_speed_up(tmp_path, cache):
    with pytest.raises(ValueError, match="only 2:4"):
        run(cfg_for("export_semi_structured=true", f"run_dir={tmp_path / 'a'}", *tiny(cache)))
    with pytest.raises(ValueError, match="CUDA"):
        run(cfg_for("export_semi_structured=true", "setting=nm24", "device=cpu", f"run_dir={tmp_path / 'b'}",
                    *tiny(cache)))


def test_c4_loader_error_names_the_fix(tmp_path):
    from wanda.data import c4_calibration

    with pytest.raises(FileNotFoundError, match="calib_path"):
        c4_calibration(None, path=str(tmp_path / "missing.json.gz"))


def test_calibration_shorter_than_seqlen_is_an_error():
    from wanda.data import random_windows

    with pytest.raises(ValueError, match="fewer than seqlen"):
        random_windows(torch.arange(10), 4, 32)
