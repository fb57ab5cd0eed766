"""The training pipeline: a default run, fair pairing of the arms, kill-and-resume, eval, the LM and ImageFolder
paths, the data helpers and bad input."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_cfg
from omegaconf import OmegaConf

from mimetic import data as D
from mimetic.fit import classification_loss, param_groups, warmup_cosine
from mimetic.models import apply_init, build_vit
from mimetic.pipeline import build_data, build_model, evaluate_run, run

PROJECT = Path(__file__).resolve().parents[1]
FAST = ["train.epochs=3", "train.warmup_epochs=1", "data.n_train=200", "train.progress=false"]


def metrics(run_dir):
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def test_default_train_py_writes_metrics(tmp_path):
    """python train.py (the documented entry point) with a shortened schedule writes metrics.json."""
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}", *FAST], cwd=PROJECT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rec = metrics(tmp_path)
    m = rec["metrics"]
    assert rec["status"] == "completed" and rec["scale"] == "mini"
    assert 0 <= m["test/acc"] <= 100 and len(m["test/acc_curve"]) == 3
    assert m["init/mimetic_layers"] == 6 and m["data/n_train"] == 200 and m["data/n_test"] == 1597
    assert m["init/qk_diag_mean"] > 0.2 and m["init/vo_diag_mean"] == pytest.approx(-0.4, abs=0.03)
    assert len(json.loads((tmp_path / "init_diagnostics.json").read_text())) == 6
    assert (tmp_path / "ckpt.pt").exists()


def test_arms_share_everything_but_attention():
    """One seed: default and mimetic models differ only in q/k/v/proj weights and biases; torch init resets
    Linear layers only; the data order is the same for every arm (it depends on seed and epoch only)."""
    cfg = compose_cfg([])
    models = {}
    for init in ("default", "mimetic", "torch", "torch_mimetic"):
        torch.manual_seed(0)
        models[init] = build_model(cfg.model, cfg.data)
        apply_init(models[init], init, generator=torch.Generator().manual_seed(1))
    sd = {k: m.state_dict() for k, m in models.items()}
    attn = lambda n: ".attn.qkv." in n or ".attn.proj." in n  # noqa: E731
    for name in sd["default"]:
        same = torch.equal(sd["default"][name], sd["mimetic"][name])
        assert same != attn(name) or ("bias" in name and same), name  # biases were zero already in timm's init
        assert torch.equal(sd["torch"][name], sd["torch_mimetic"][name]) != attn(name), name  # torch biases != 0
    assert torch.equal(sd["torch"]["pos_embed"], sd["default"]["pos_embed"])
    assert not torch.equal(sd["torch"]["blocks.0.mlp.fc1.weight"], sd["default"]["blocks.0.mlp.fc1.weight"])
    b1, b2 = build_data(cfg.data, 0)[0], build_data(cfg.data, 0)[0]
    for (x1, y1), (x2, y2) in zip(b1.epoch(3), b2.epoch(3)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(next(iter(b1.epoch(3)))[1], next(iter(b1.epoch(4)))[1])


def test_kill_and_resume_gives_the_uninterrupted_run(tmp_path):
    full = compose_cfg(FAST + ["train.epochs=4"], tmp_path / "full")
    run(full)
    part = compose_cfg(FAST + ["train.epochs=4", "train.stop_after_epoch=2"], tmp_path / "part")
    assert np.isnan(run(part))
    assert metrics(tmp_path / "part")["status"] == "interrupted"
    resumed = compose_cfg(FAST + ["train.epochs=4"], tmp_path / "part")
    run(resumed)
    a, b = metrics(tmp_path / "full")["metrics"], metrics(tmp_path / "part")["metrics"]
    assert b["train/resumed_from_epoch"] == 2
    assert a["test/acc_curve"] == b["test/acc_curve"] and a["train/final_loss"] == b["train/final_loss"]


def test_eval_py_reproduces_the_final_accuracy(tmp_path):
    run(compose_cfg(FAST, tmp_path))
    out = evaluate_run(OmegaConf.create({"run_dir": str(tmp_path), "device": "cpu"}))
    assert out["test/acc"] == pytest.approx(metrics(tmp_path)["metrics"]["test/acc"], abs=1e-9)
    assert len(out["trained/layers"]) == 6 and (tmp_path / "eval.json").exists()
    with pytest.raises(FileNotFoundError, match="run_dir="):
        evaluate_run(OmegaConf.create({"run_dir": str(tmp_path / "nope"), "device": "cpu"}))


def test_sincos_position_embedding_is_fixed(tmp_path):
    cfg = compose_cfg(FAST + ["model.pos_embed=sincos", "train.epochs=1"], tmp_path)
    run(cfg)
    sd = torch.load(tmp_path / "ckpt.pt", weights_only=False)["model"]
    from mimetic.diagnostics import sincos_2d

    assert torch.allclose(sd["pos_embed"][0], sincos_2d(4, 64).float())


def test_language_model_path(tmp_path):
    """A tiny GPT-2 on a local text file with the bytes tokenizer: mimetic on its Conv1D attention, perplexity."""
    text = "the quick brown fox jumps over the lazy dog. " * 60
    (tmp_path / "wiki.train.raw").write_text(text)
    (tmp_path / "wiki.test.raw").write_text(text[:800])
    cfg = compose_cfg(["model=gpt_tiny", "data=wikitext103", f"data.root={tmp_path}", "data.tokenizer=bytes",
                       "data.batch_size=8", "train.epochs=2", "train.warmup_epochs=0.5", "train.lr=3e-3",
                       "optimized_metric=test/ppl", "train.progress=false"], tmp_path / "run")
    ppl = run(cfg)
    m = metrics(tmp_path / "run")["metrics"]
    assert m["init/mimetic_layers"] == 2 and m["init/vo_diag_mean"] == pytest.approx(-0.4, abs=0.06)
    assert np.isfinite(ppl) and ppl < 256  # better than uniform over bytes
    assert m["test/ppl_curve"][-1][1] == ppl


def test_imagefolder_path_with_timm_transforms(tmp_path):
    """The Tiny-ImageNet/ImageNet loader: ImageFolder train/ and val/, the recipe's RandAugment, DataLoader."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("n01", "n02"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(6):
                img = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(img).save(tmp_path / split / c / f"{i}.png")
    cfg = compose_cfg(["data=tiny_imagenet", f"data.root={tmp_path}", "data.img_size=16", "data.num_classes=2",
                       "data.batch_size=4", "data.eval_batch_size=8", "data.workers=0", "model.patch_size=4",
                       "train.epochs=1", "train.progress=false", "device=cpu"], tmp_path / "run")
    run(cfg)
    m = metrics(tmp_path / "run")["metrics"]
    assert m["data/n_train"] == 12 and m["data/n_test"] == 12 and 0 <= m["test/acc"] <= 100


@pytest.mark.parametrize("name,match", [("cifar10", "data.download=true"), ("svhn", "data.download=true"),
                                        ("imagenet", "ImageNet-1k"), ("tiny_imagenet", "prepare_tiny_imagenet")])
def test_missing_datasets_name_the_fix(tmp_path, name, match):
    cfg = compose_cfg([f"data={name}", f"data.root={tmp_path / 'none'}", "data.workers=0"], tmp_path / "run")
    with pytest.raises(FileNotFoundError, match=match):
        build_data(cfg.data, 0)


def test_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_wikitext103"):
        D.load_tokens(tmp_path / "wiki.train.raw", "bytes")
    with pytest.raises(ValueError, match="model.kind=gpt needs data=wikitext103"):
        cfg = compose_cfg(["model=gpt_tiny"])
        build_model(cfg.model, cfg.data)
    with pytest.raises(ValueError, match="init.name"):
        apply_init(build_vit(8, 2, 1, 10, 16, 1, 2), "mimetik")
    with pytest.raises(ValueError, match="divisible"):
        build_vit(8, 2, 1, 10, 30, 1, 4)
    with pytest.raises(ValueError, match="pos_embed"):
        build_vit(8, 2, 1, 10, 16, 1, 2, pos_embed="rope")
    with pytest.raises(ValueError, match="data.n_train"):
        D.digits(5)


def test_random_roll_matches_torch_roll():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    g = torch.Generator().manual_seed(3)
    out = D.random_roll(x, 2, g)
    dy, dx = torch.randint(-2, 3, (2, 2), generator=torch.Generator().manual_seed(3))
    for i in range(2):
        assert torch.equal(out[i], torch.roll(x[i], (int(dy[i]), int(dx[i])), dims=(1, 2)))


def test_batches_cover_the_data_once_per_epoch():
    x, y = torch.arange(10).float().view(10, 1, 1, 1), torch.arange(10)
    b = D.TensorBatches(x, y, 4, seed=0)
    ys = torch.cat([yb for _, yb in b.epoch(0)])
    assert len(b) == 3 and sorted(ys.tolist()) == list(range(10))


def test_schedule_and_weight_decay_groups():
    assert warmup_cosine(0, 100, 10, 1.0, 0.0) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 1.0, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10, 1.0, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10, 1.0, 0.01) == pytest.approx(0.01)
    model = build_vit(8, 2, 1, 10, 16, 1, 2)
    decay, no_decay = param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert skipped >= {"pos_embed", "blocks.0.attn.qkv.bias", "blocks.0.norm1.weight"}
    assert all(p.ndim >= 2 for p in decay["params"]) and "pos_embed" not in {names[id(p)] for p in decay["params"]}


def test_mixup_loss_uses_soft_targets():
    from timm.data import Mixup

    torch.manual_seed(0)
    model = build_vit(8, 2, 3, 4, 16, 1, 2)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    mix = Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.1, num_classes=4)
    loss = classification_loss(model, (x, y), 0.1, mix)
    assert torch.isfinite(loss) and loss.requires_grad


def test_fp16_loss_scaling_path_runs_on_cpu():
    """amp=fp16 goes through the GradScaler (enabled only for fp16); on the CPU autocast fp16 is slow but valid."""
    from mimetic.fit import train

    torch.manual_seed(0)
    model = build_vit(8, 2, 1, 10, 16, 1, 2)
    x, y = D.random_images(64, 8, 1, 10, 0)
    out = train(model, D.TensorBatches(x, y, 32, 0), classification_loss, lambda m: {}, epochs=1, lr=1e-3,
                clip_grad=1.0, amp_dtype=torch.float16, progress=False)
    assert np.isfinite(out["final_loss"])


def test_hf_tokenizer_path_tokenises_in_chunks_and_caches(tmp_path):
    """A tokenizer saved with save_pretrained and loaded by path (the route of data.tokenizer=gpt2): ids equal a
    one-shot encoding, the cache is written beside the file and reused."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    words = ["[UNK]", "the", "quick", "brown", "fox", "jumps", "."]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    text = "the quick brown fox .\njumps the fox\n" * 7
    (tmp_path / "wiki.test.raw").write_text(text)
    ids = D.load_tokens(tmp_path / "wiki.test.raw", str(tmp_path / "tok"), chunk_lines=3)
    want = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))(text.splitlines(keepends=True))["input_ids"]
    assert ids.tolist() == [t for line in want for t in line] and len(ids) == 56
    cache = tmp_path / "wiki.test.raw.tok.ids.npy"
    assert cache.exists()
    np.save(cache, np.arange(3, dtype=np.int32))  # a changed cache is what a second call returns (it is reused)
    assert D.load_tokens(tmp_path / "wiki.test.raw", str(tmp_path / "tok")).tolist() == [0, 1, 2]
    assert D.vocab_size(str(tmp_path / "tok")) == 7
