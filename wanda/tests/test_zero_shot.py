"""The lm-eval path of Table 2 on a local multiple-choice task (no hub): metric acc, read back per task."""
import json

import pytest


@pytest.mark.slow  # importing lm-eval alone takes ~10 s on our machines
def test_zero_shot_local_task(tmp_path, saved_llama):
    pytest.importorskip("lm_eval")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from wanda import zero_shot
    from wanda.models import load_model

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel()
    tk.train_from_iterator(["is the sky blue yes no red green"] * 10,
                           trainers.BpeTrainer(vocab_size=100, special_tokens=["<unk>", "<eos>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<eos>")
    data = tmp_path / "mc.jsonl"
    data.write_text("\n".join(json.dumps({"q": f"is the sky blue {i}", "choices": ["yes", "no"], "label": i % 2})
                              for i in range(6)))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny_mc.yaml").write_text(f"""task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
""")
    model = load_model(str(saved_llama), dtype="float32")
    out = zero_shot(model, tok, tasks=["tiny_mc"], include_path=str(tmp_path / "tasks"))
    assert set(out) == {"zeroshot/tiny_mc", "zeroshot/mean"}
    assert 0 <= out["zeroshot/tiny_mc"] <= 100 and out["zeroshot/mean"] == out["zeroshot/tiny_mc"]
