"""The per-domain LM-head gradient split: exact against explicit per-domain backward passes, and
the model's gradient unchanged (untied, tied, another architecture, bf16, unsorted batches)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from domix.balance.signals.grad_gram import HeadSplit
from domix.train.models import ModelConfig

V = 300


def _model(tie: bool, **kw):
    return ModelConfig(preset="micro", tie_embeddings=tie, context_length=16, **kw).build(V, seed=0)


def _batch(seed=0, B=6, T=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, V, (B, T + 1), generator=g)
    dom = torch.tensor([0, 0, 1, 3, 3, 3])  # domain 2 absent
    return x, dom


def _token_loss(model, x):
    logits = model(input_ids=x[:, :-1]).logits
    return F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten(), reduction="none").view(x.shape[0], -1)


def _per_domain_grads(model, x, dom, layer_of, m=4):
    """The weight gradient of ``layer_of(model)`` from one backward per domain of its share of the
    token-mean objective (a fresh copy of the model each time)."""
    out = []
    for d in range(m):
        ref_model = copy.deepcopy(model)
        ref_model.zero_grad()
        loss_BT = _token_loss(ref_model, x)
        (loss_BT[dom == d].sum() / loss_BT.numel()).backward()
        out.append(layer_of(ref_model).weight.grad.clone())
    return out


def _gram(vectors):
    flat = torch.stack([v.flatten() for v in vectors]).double()
    return (flat @ flat.t()).numpy()


@pytest.mark.parametrize("shares", ["unequal", "equal"])  # one product per domain, or one batched product
def test_split_gram_equals_explicit_per_domain_backward(shares):
    model = _model(tie=False)
    x, dom = _batch()
    if shares == "equal":
        dom = torch.tensor([0, 0, 1, 1, 3, 3])
    split = HeadSplit(model.get_output_embeddings(), m=4, self_terms=True)
    split.set_domains(dom)
    _token_loss(model, x).mean().backward()
    split.remove()
    # reference: one backward per domain of that domain's share of the same objective
    ref = _per_domain_grads(model, x, dom, lambda mod: mod.get_output_embeddings())
    got, want = split.gram()["gram"], _gram(ref)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5
    assert np.allclose(np.diag(got)[2], 0.0)  # the absent domain has no gradient
    counts = torch.bincount(dom, minlength=4)
    assert split.counts.tolist() == counts.tolist()
    # one step: the squared block norms are the diagonal, the squared counts the counts squared
    sig = split.gram()
    assert np.allclose(sig["sq"], np.diag(want), rtol=1e-5) and sig["n2"].tolist() == counts.square().tolist()


def test_block_norms_are_opt_in_and_unbiased_rnb_says_how_to_get_them():
    from domix.balance.base import Domains, Observation, build_method
    from domix.config import ConfigError

    model = _model(tie=False)
    x, dom = _batch()
    split = HeadSplit(model.get_output_embeddings(), m=4)
    split.set_domains(dom)
    _token_loss(model, x).mean().backward()
    sig = split.gram()
    assert "sq" not in sig and split.sq.abs().sum() == 0
    rnb = build_method("rnb", {"gram": "unbiased"})
    rnb.start(Domains(tuple("abcd"), np.ones(4), np.full(4, 0.25)))
    obs = Observation(step=4, steps=4, tokens=np.ones(4), train_loss=np.ones(4), signals={"domain_grad_gram": sig})
    with pytest.raises(ConfigError, match="self_terms=true"):
        rnb.update(obs)


@pytest.mark.parametrize("tie", [False, True])
def test_model_gradient_is_unchanged(tie):
    x, dom = _batch(seed=1)
    plain, ours = _model(tie), _model(tie)
    _token_loss(plain, x).mean().backward()
    split = HeadSplit(ours.get_output_embeddings(), m=4)
    split.set_domains(dom)
    _token_loss(ours, x).mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ours.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-8), name


def test_tied_embeddings_split_only_the_heads_share():
    model = _model(tie=True)
    x, dom = _batch(seed=2)
    split = HeadSplit(model.get_output_embeddings(), m=4)
    hidden = {}
    model.get_output_embeddings().register_forward_hook(lambda mod, inp, out: hidden.update(h=inp[0], logits=out))
    split.set_domains(dom)
    loss = _token_loss(model, x).mean()
    e_BTV = torch.autograd.grad(loss, hidden["logits"], retain_graph=True)[0]
    loss.backward()
    head_share = e_BTV.flatten(0, 1).t() @ hidden["h"].flatten(0, 1)  # E^T H, by plain autograd
    assert torch.allclose(split.acc.sum(0), head_share, rtol=1e-5, atol=1e-7)
    # the rest of the tied weight's gradient is the input embedding's share, untouched
    assert not torch.allclose(model.get_output_embeddings().weight.grad, head_share, atol=1e-6)


def test_unsorted_batch_other_architecture_and_bf16():
    x, dom = _batch(seed=3)
    perm = torch.tensor([3, 0, 5, 2, 1, 4])
    llama = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
             "num_attention_heads": 2, "num_key_value_heads": 2}
    sorted_model = _model(tie=False, hf_config=llama)
    shuffled_model = _model(tie=False, hf_config=llama)
    a = HeadSplit(sorted_model.get_output_embeddings(), m=4)
    a.set_domains(dom)
    _token_loss(sorted_model, x).mean().backward()
    b = HeadSplit(shuffled_model.get_output_embeddings(), m=4)
    b.set_domains(dom[perm])
    _token_loss(shuffled_model, x[perm]).mean().backward()
    assert torch.allclose(a.acc, b.acc, rtol=1e-5, atol=1e-8)
    # bf16 autocast, unsorted batch: every parameter's gradient matches plain autograd's up to
    # bf16 rounding
    plain, bf = _model(tie=True), _model(tie=True)
    c = HeadSplit(bf.get_output_embeddings(), m=4)
    c.set_domains(dom[perm])
    for model in (plain, bf):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=x[perm][:, :-1]).logits
        F.cross_entropy(logits.float().flatten(0, 1), x[perm][:, 1:].flatten()).backward()
    for (name, p), q in zip(plain.named_parameters(), bf.parameters()):
        assert q.grad.dtype == torch.float32
        assert torch.allclose(p.grad, q.grad, rtol=0.05, atol=0.02 * p.grad.abs().max().item()), name
    assert all(c.acc[d].abs().sum() > 0 for d in dom.unique().tolist())


def test_sketch_gram_estimates_the_exact_gram():
    x, dom = _batch(seed=4)
    exact_model = _model(False)
    exact = HeadSplit(exact_model.get_output_embeddings(), m=4)
    exact.set_domains(dom)
    _token_loss(exact_model, x).mean().backward()
    want = exact.gram()["gram"]
    errors = []
    for seed in range(8):
        model = _model(False)
        sk = HeadSplit(model.get_output_embeddings(), m=4, mode="sketch", rows=64, seed=seed)
        sk.set_domains(dom)
        _token_loss(model, x).mean().backward()
        assert sk.acc.shape == (4, 64, 64) and sk.nbytes < exact.nbytes
        errors.append(sk.gram()["gram"] - want)
    scale = np.abs(want).max()
    # unbiased: averaging 8 seeds shrinks the error well below a single sketch's typical error
    assert np.abs(np.mean(errors, axis=0)).max() < 0.6 * np.mean([np.abs(e).max() for e in errors])
    assert np.abs(np.mean(errors, axis=0)).max() / scale < 0.1
    sk.reset()
    assert sk.acc.abs().sum() == 0 and sk.counts.sum() == 0


LLAMA = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 32}


@pytest.mark.parametrize("layer", ["model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj"])
def test_a_named_inner_linear_layer_splits_like_explicit_per_domain_backward(layer):
    from domix.balance.signals.grad_gram import split_layer

    model = ModelConfig(hf_config=LLAMA, context_length=16).build(V, seed=0)
    x, dom = _batch()
    split = HeadSplit(split_layer(model, layer), m=4)
    split.set_domains(dom)
    _token_loss(model, x).mean().backward()
    split.remove()
    got_grad = dict(model.named_modules())[layer].weight.grad.clone()
    ref = _per_domain_grads(model, x, dom, lambda mod: dict(mod.named_modules())[layer])
    for d in range(4):  # every domain's accumulated block is its own backward's gradient
        assert torch.allclose(split.acc[d], ref[d], atol=1e-6, rtol=1e-4)
    assert torch.allclose(got_grad, sum(ref), atol=1e-6, rtol=1e-4)  # the model's gradient is unchanged


def test_a_classifier_layer_with_two_dimensional_input_splits_per_example():
    from domix.balance.signals.grad_gram import split_layer

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    dom = torch.tensor([0, 0, 1, 3, 3, 3])
    split = HeadSplit(split_layer(net, "2"), m=4)
    split.set_domains(dom)
    F.cross_entropy(net(x), y).backward()
    split.remove()
    for d in range(4):
        ref = copy.deepcopy(net)
        ref.zero_grad()
        loss = F.cross_entropy(ref(x), y, reduction="none")
        (loss[dom == d].sum() / len(y)).backward()
        assert torch.allclose(split.acc[d], ref[2].weight.grad, atol=1e-7)


def test_a_layer_that_is_not_linear_is_refused_with_the_model_linear_layers():
    from domix.balance.signals.grad_gram import split_layer
    from domix.config import ConfigError

    model = _model(tie=False)  # GPT-2: its inner layers are Conv1D
    with pytest.raises(ConfigError, match=r"transformer.h.0.mlp.c_fc: it is a Conv1D, not an nn.Linear\. "
                                          r"The model's linear layers: lm_head"):
        split_layer(model, "transformer.h.0.mlp.c_fc")
    with pytest.raises(ConfigError, match="no such module.*linear layers: lm_head"):
        split_layer(model, "transformer.h.9")
    with pytest.raises(ConfigError, match="no output layer.*linear layers: 0, 2"):
        split_layer(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2)), None)


def test_rnb_trains_on_a_named_inner_layer(tmp_path, micro_config):
    from domix.run import train

    flow = "{" + ", ".join(f"{k}: {v}" for k, v in LLAMA.items()) + "}"
    cfg = micro_config(tmp_path, steps=6, eval_every=6).merge(
        [f"model.hf_config={flow}", "model.context_length=32", "mixing.method=rnb", "mixing.params.round_steps=3",
         "mixing.signals.domain_grad_gram.layer=model.layers.1.mlp.down_proj"])
    result = train(cfg)
    assert result.summary["steps"] == 6 and not np.allclose(list(result.summary["mixture"].values()), 0.2)
