"""Tiny models built in code and round-tripped through save_pretrained/from_pretrained."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def tiny_llama(seed=0, **kw):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = dict(vocab_size=128, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=4, max_position_embeddings=32, tie_word_embeddings=False)
    cfg.update(kw)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    with torch.no_grad():  # a few loud input channels, so that Wanda and magnitude disagree
        model.model.embed_tokens.weight[:, :3] *= 20
    return model


@pytest.fixture
def saved_llama(tmp_path):
    """A tiny Llama saved with save_pretrained (the path users hit with from_pretrained)."""
    model = tiny_llama()
    model.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


@pytest.fixture
def calib():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 128, (16, 32), generator=g)
