"""The mini's tiny CLIP: tokenizer, the multi-positive contrastive loss, training moves it, zero-shot runs."""
import math

import numpy as np
import pytest
import torch

from tmars.synthetic import CLASSES, make_pool
from tmars.tinyclip import (
    CLASS_POS,
    VOCAB,
    build_clip,
    contrastive_loss,
    cosine_scores,
    to_tensor,
    tokenize,
    train_clip,
    zero_shot,
)


def test_tokenizer():
    t = tokenize(["a photo of a circle", "a photo of a arrow"])
    assert t.shape == (2, 7) and t[0, 0] == VOCAB.index("<sot>") and t[0, -1] == VOCAB.index("<eot>")
    assert t[:, CLASS_POS].tolist() == [VOCAB.index("circle"), VOCAB.index("arrow")]
    assert (t.argmax(1) == 6).all(), "open_clip pools at the argmax id: <eot> must be the largest"
    with pytest.raises(ValueError, match="vocabulary"):
        tokenize(["a photo of a giraffe"])


def test_contrastive_loss_counts_every_same_caption_pair_as_positive():
    f = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]]), dim=-1)
    labels = torch.tensor([0, 0, 1])
    scale = torch.tensor(10.0)
    loss = contrastive_loss(f, f, scale, labels)
    # rows 0/1: logits (10, 10, 0), target (1/2, 1/2, 0); row 2: logits (0, 0, 10), target one-hot
    lse = math.log(2 * math.exp(10) + 1)
    expect = (2 * (lse - 10) + (math.log(2 + math.exp(10)) - 10)) / 3
    assert loss.item() == pytest.approx(expect, rel=1e-6)


def test_training_lowers_the_loss_and_scores_are_cosines():
    pool = make_pool(64, mix={"clean": 1.0}, seed=0)
    x, t = to_tensor(pool.images), tokenize(pool.captions)
    assert x.shape == (64, 3, 64, 64) and -1 <= x.min() and x.max() <= 1
    m = build_clip(seed=0)
    losses = train_clip(m, x, t, steps=30, batch_size=32, lr=3e-3, warmup=5)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    s = cosine_scores(m, x, t)
    assert s.shape == (64,) and (np.abs(s) <= 1 + 1e-6).all()
    acc = zero_shot(m, x, pool.caption_class)
    assert 0 <= acc <= 1 and len(CLASSES) == 10
