"""Prompt/response records: reading, the response-only loss mask, truncation, masked losses."""

import json

import numpy as np
import pytest
import torch

from domix.corpus import CorpusError, Fields, read
from domix.data.domains import resolve_domains
from domix.data.records import IGNORE, pack_records
from domix.data.token_store import TokenStore
from domix.tokenizer import INSTRUCTION_TEMPLATE, render_prompt
from domix.train.loop import objective
from support import RECORD_FIELDS, demo_records, records_corpus

FIELDS = Fields(**RECORD_FIELDS)
L = 64


@pytest.fixture(scope="module")
def records(tmp_path_factory, demo_corpus):
    recs = demo_records(demo_corpus)
    recs[0]["input"] = " ".join(["a long context"] * 200)  # a prompt longer than the context
    recs[1]["output"] = " ".join(["a long answer"] * 200)  # a response longer than the context
    folder = tmp_path_factory.mktemp("records")
    return folder / "records.jsonl", recs, records_corpus(recs, folder)


def test_records_are_read_with_their_prompt(records):
    _, recs, corpus = records
    assert corpus.records and corpus.num_docs == len(recs)
    table = corpus.read(["id", "prompt", "text", "domain"]).to_pylist()
    first = next(r for r in table if r["id"] == "records.jsonl:1")
    assert first["prompt"] == f"{recs[0]['instruction']}\n\n{recs[0]['input']}"
    assert first["text"] == recs[0]["output"] and first["domain"] == recs[0]["category"]


def test_a_record_without_its_response_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [{"instruction": "Say hi.", "output": "hi", "category": "a"}] * 2 + [{"instruction": "x", "category": "a"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(CorpusError, match=r"bad\.jsonl:3: no 'output' field \(set fields\.text to the response"):
        list(read("jsonl", path, FIELDS))
    path.write_text(json.dumps({"input": " ", "output": "hi", "category": "a"}) + "\n")
    with pytest.raises(CorpusError, match=r"bad\.jsonl:1: no prompt"):
        list(read("jsonl", path, FIELDS))


@pytest.fixture(scope="module")
def packed(records, demo_tokenizer):
    _, _, corpus = records
    store = TokenStore.build(corpus, demo_tokenizer, progress=False)
    domains = resolve_domains(corpus, "original")
    return corpus, store, domains, pack_records(corpus, store, domains, "train", L)


def test_the_mask_covers_exactly_the_response_tokens(packed, demo_tokenizer):
    """Re-tokenized from the corpus text: the kept targets are the response and its EOS, the
    inputs before them the rendered prompt's last tokens, everything else is ignored."""
    corpus, store, domains, data = packed
    table = corpus.read(["prompt", "text", "split"]).to_pylist()
    cut = 0
    for d in range(len(domains)):
        n = int(data.num_sequences[d])
        dom, seq = np.full(n, d), np.arange(n)
        batch = torch.from_numpy(data.gather(dom, seq))
        targets, keep = data.targets(batch, dom, seq)
        assert torch.equal(targets == IGNORE, ~keep)
        for row, tgt, k, doc in zip(batch, targets, keep, data.docs[data.bounds[d] : data.bounds[d + 1]]):
            rec = table[doc]
            assert rec["split"] == "train"
            prompt = demo_tokenizer.encode(render_prompt(INSTRUCTION_TEMPLATE, rec["prompt"]))
            response = demo_tokenizer.encode(rec["text"]) + [demo_tokenizer.eos_id]
            idx = torch.nonzero(k).flatten()
            first, n_kept = int(idx[0]), len(idx)
            assert torch.equal(idx, torch.arange(first, first + n_kept))  # one span
            assert n_kept == min(len(response), L)
            assert tgt[k].tolist() == response[:n_kept]
            assert row[: first + 1].tolist() == prompt[-(first + 1):]  # the prompt, cut from the left
            cut += first + 1 < len(prompt)
    assert cut == data.meta["truncated_prompts"] >= 1
    assert data.meta["truncated_responses"] >= 1


def test_masked_objective_is_the_mean_over_response_tokens():
    g = torch.Generator().manual_seed(0)
    loss = torch.rand(6, 10, generator=g)
    valid = torch.rand(6, 10, generator=g) > 0.4
    loss = loss * valid  # the loss is 0 where the target is ignored
    dom = torch.tensor([0, 0, 1, 1, 1, 2])
    assert torch.allclose(objective(loss, dom, None, 3, valid), loss[valid].mean())
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    naive = sum(w[d] * loss[dom == d][valid[dom == d]].mean() for d in range(3))
    assert torch.allclose(objective(loss, dom, w, 3, valid), naive.float())


def records_run(micro_config, tmp_path, corpus, method="stratified", *more):
    return micro_config(tmp_path / method, steps=6, eval_every=6, checkpoint_every=6).merge(
        [f"data.corpus={corpus.path}", "data.max_docs_per_domain=null", f"mixing.method={method}", *more])


def test_training_on_records_masks_the_loss_and_reports_truncation(tmp_path, records, micro_config):
    from domix.config import ConfigError
    from domix.run import prepare_data, train

    _, _, corpus = records
    cfg = records_run(micro_config, tmp_path, corpus)
    data = prepare_data(cfg)
    result = train(cfg, data=data)
    assert result.summary["records"]["train"]["truncated_prompts"] == data.train.meta["truncated_prompts"] >= 1
    assert result.summary["records"]["validation"]["records"] == int(data.eval.num_sequences.sum())
    # the validation loss of a domain is the mean over its held-out responses' tokens only
    model = cfg.model.build(data.tokenizer.vocab_size, seed=0)
    model.load_state_dict(torch.load(sorted((tmp_path / "stratified" / "checkpoints").glob("*.pt"))[-1],
                                     weights_only=False)["model"])
    model.eval()
    d = 0
    n = int(data.eval.num_sequences[d])
    batch = torch.from_numpy(data.eval.gather(np.full(n, d), np.arange(n)))
    lo, hi = data.eval.spans[data.eval.bounds[d] : data.eval.bounds[d + 1]].T
    with torch.no_grad():
        logits = model(input_ids=batch[:, :-1]).logits
    naive = [torch.nn.functional.cross_entropy(logits[i, a:b], batch[i, a + 1 : b + 1], reduction="sum")
             for i, (a, b) in enumerate(zip(lo, hi))]
    assert result.eval.loss[d] == pytest.approx(float(sum(naive)) / int((hi - lo).sum()), rel=1e-5)
    # the signal-reading methods train on records (their signals read the masked loss)
    for method, *more in (("rnb", "mixing.params.round_steps=3"), ("doge",),
                          ("dograph", "mixing.params.round_steps=3", "mixing.params.clusters=2")):
        assert train(records_run(micro_config, tmp_path, corpus, method, *more), data=data).summary["steps"] == 6
    # a signal that does not declare masked_loss is refused on records, before step 1
    from domix.balance.signals import SIGNALS

    signal = SIGNALS.get("grad_alignment")
    signal.masked_loss = False
    try:
        with pytest.raises(ConfigError, match="prompt/response records"):
            train(records_run(micro_config, tmp_path, corpus, "doge"), data=data)
    finally:
        signal.masked_loss = True


def test_trainer_examples_of_records_carry_the_mask_as_labels(packed):
    """transformers' models shift labels themselves: labels[t] is the target of position t - 1."""
    pytest.importorskip("transformers")
    from domix.hf.dataset import PackedSource

    _, _, _, data = packed
    dom, seq = np.zeros(4, dtype=np.int64), np.arange(4)
    examples = PackedSource(data).examples(dom, seq)
    targets, _ = data.targets(torch.from_numpy(data.gather(dom, seq)), dom, seq)
    rows = torch.from_numpy(data.gather(dom, seq))
    for ex, tgt, row in zip(examples, targets, rows):
        assert ex["labels"][0] == IGNORE and torch.equal(ex["labels"][1:], tgt[:-1])
        assert torch.equal(ex["input_ids"], row[:-1])


ONLINE = {"odm": [], "aioli": ["mixing.params.round_steps=6", "mixing.params.sweeps=1", "mixing.params.probe_steps=1"],
          "ado": ["mixing.params.ignore_steps=0", "mixing.params.start_step=2", "mixing.params.refit_every=2",
                  "mixing.params.subsample=1", "mixing.params.min_fit_points=2", "mixing.params.fit_iters=20"]}


@pytest.mark.parametrize("method", [*ONLINE, "doremi", "skillit"])
def test_methods_reading_losses_train_on_records(tmp_path, records, micro_config, method):
    from domix.pipelines import build_pipeline
    from domix.run import train

    _, _, corpus = records
    cfg = records_run(micro_config, tmp_path, corpus, "stratified", "train.steps=4", "train.eval_every=4",
                      "train.checkpoint_every=4")
    if method in ONLINE:
        result = train(cfg.merge([f"mixing.method={method}", *ONLINE[method]]))
        assert result.summary["steps"] == 4 and np.isfinite(result.eval.macro)
        return
    art = build_pipeline(method, cfg, tmp_path / method, {"steps": 2, "round_steps": 2} if method == "skillit" else {}).run()
    run = train(cfg.merge([f"out_dir={tmp_path / 'final'}", *art.train_with]))
    assert run.summary["steps"] == 4 and np.isfinite(run.eval.macro)


def test_compare_piece_names_ignore_the_template_where_there_are_no_prompts(tmp_path, micro_config, records):
    """Results files written before data.template existed keep their piece names (packed corpora)."""
    from domix.compare.grid import Cell, cell_config
    from domix.run import prepare_data

    cell = Cell("stratified", "original", 0)
    cfg = micro_config(tmp_path)
    data = prepare_data(cfg)
    name = cell_config(cell, cfg, data, {})[0]
    assert cell_config(cell, cfg.merge(["data.template='Q: {prompt} A:'"]), data, {})[0] == name
    assert cell_config(cell, cfg.merge(["train.lr=0.5"]), data, {})[0] != name
    sft = records_run(micro_config, tmp_path, records[2])
    sft_data = prepare_data(sft)
    assert (cell_config(cell, sft.merge(["data.template='Q: {prompt} A:'"]), sft_data, {})[0]
            != cell_config(cell, sft, sft_data, {})[0])  # on prompt/response data it matters
