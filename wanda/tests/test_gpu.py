"""GPU smoke: a random Llama (hidden 1024, 4 layers) pruned on CUDA in bf16 by all three methods; 2:4 export."""
import time

import pytest
import torch

from wanda import perplexity, prune
from wanda.export import is_24, linear_speedup

pytestmark = pytest.mark.gpu


def cuda_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=1000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=4,
                      num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=512)
    return LlamaForCausalLM(cfg).to("cuda", torch.bfloat16).eval()


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_three_methods_on_cuda_bf16(pattern):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    g = torch.Generator().manual_seed(0)
    calib = torch.randint(0, 1000, (32, 512), generator=g)
    test = torch.randint(0, 1000, (4 * 512,), generator=g)
    times = {}
    for method in ("wanda", "magnitude", "sparsegpt"):
        model = cuda_llama()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        report = prune(model, calib, method=method, sparsity=0.5, pattern=pattern, batch_size=8, progress=False)
        torch.cuda.synchronize()
        times[method] = time.perf_counter() - t0
        assert 0.5 <= report["overall"] < 0.505, (method, report["overall"])
        assert model.model.layers[0].mlp.down_proj.weight.dtype == torch.bfloat16
        ppl = perplexity(model, test, 512, batch_size=4)
        assert ppl == ppl and ppl < float("inf")
    print(f"\n[{pattern}] prune wall time on CUDA (incl. calibration forwards): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))


def test_export_whole_model_to_semi_structured():
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("2:4 sparse tensor cores need an Ampere-or-newer GPU")
    from wanda.export import to_semi_structured

    model = cuda_llama().half()
    calib = torch.randint(0, 1000, (16, 512), generator=torch.Generator().manual_seed(0))
    test = torch.randint(0, 1000, (4 * 512,), generator=torch.Generator().manual_seed(1))
    prune(model, calib, method="wanda", sparsity=0.5, pattern="2:4", batch_size=8, progress=False)
    before = perplexity(model, test, 512, batch_size=4)
    assert to_semi_structured(model) == 4 * 7
    after = perplexity(model, test, 512, batch_size=4)
    assert abs(after - before) / before < 1e-2  # same model, another kernel


def test_semi_structured_24_kernel():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    if torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("2:4 sparse tensor cores need Ampere or newer")
    w = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    idx = torch.topk(w.abs().view(4096, 1024, 4), 2, dim=-1, largest=False)[1]
    w = w.view(4096, 1024, 4).scatter(-1, idx, 0).view(4096, 4096)
    assert is_24(w)
    r = linear_speedup(w, tokens=8192)
    print(f"\n2:4 linear 4096x4096 fp16, 8192 tokens: dense {r['dense_ms']:.3f} ms, "
          f"semi-structured {r['sparse_ms']:.3f} ms, speedup {r['speedup']:.2f}x")
    assert r["max_abs_diff"] < 0.5  # the sparse kernel computes the same product (speed is reported, not judged)
