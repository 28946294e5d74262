"""The per-sample LM-head gradient sketch: equal to P1^T G_s P2 of explicit per-sample backward
passes, and the model's own gradient untouched."""

import copy

import pytest
import torch
import torch.nn.functional as F

from domix.balance.signals.sample_grad_features import HeadSketch
from domix.train.models import ModelConfig

V = 300


def _token_loss(model, x):
    logits = model(input_ids=x[:, :-1]).logits
    return F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten(), reduction="none").view(x.shape[0], -1)


@pytest.mark.parametrize("tie", [False, True])
def test_sketch_equals_the_projected_per_sample_head_gradient(tie):
    model = ModelConfig(preset="micro", tie_embeddings=tie, context_length=16).build(V, seed=0)
    x = torch.randint(0, V, (5, 17), generator=torch.Generator().manual_seed(1))
    ref_model = copy.deepcopy(model)
    sketch = HeadSketch(model.get_output_embeddings(), r1=6, r2=4, seed=3)
    sketch.select = torch.tensor([0, 2, 4])
    _token_loss(model, x).mean().backward()
    sketch.remove()
    got = torch.cat(sketch.out)
    assert got.shape == (3, 24) and sketch.flops > 0
    # reference: the head's gradient of each selected sample's share of the loss, projected.
    # (with tied embeddings the weight's .grad also holds the input embedding's share, so the head's
    # own share is taken from E_s^T H_s, with E_s = dL/dlogits from autograd)
    h = {}
    head = ref_model.get_output_embeddings()
    handle = head.register_forward_hook(lambda m, i, o: h.update(h=i[0], o=o) or o.retain_grad())
    for row, s in enumerate([0, 2, 4]):
        ref_model.zero_grad()
        loss_BT = _token_loss(ref_model, x)
        (loss_BT[s].sum() / loss_BT.numel()).backward()
        G = h["o"].grad[s].t() @ h["h"][s].detach()  # [V, d] = E_s^T H_s
        if not tie:
            assert torch.allclose(G, head.weight.grad, atol=1e-6)
        want = (sketch.P1_VR.t() @ G @ sketch.P2_DR).flatten()
        assert torch.allclose(got[row], want, atol=1e-5)
    handle.remove()


def test_model_gradient_is_unchanged_and_evaluation_is_not_sketched():
    model = ModelConfig(preset="micro", context_length=16).build(V, seed=0)
    ref = copy.deepcopy(model)
    x = torch.randint(0, V, (4, 17), generator=torch.Generator().manual_seed(2))
    sketch = HeadSketch(model.get_output_embeddings(), 4, 4)
    sketch.select = torch.arange(4)
    _token_loss(model, x).mean().backward()
    _token_loss(ref, x).mean().backward()
    for (n, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad), n
    sketch.select = torch.arange(4)
    with torch.no_grad():
        _token_loss(model, x)
    assert len(sketch.out) == 1  # the no-grad forward was not sketched


@pytest.mark.parametrize("masked", [False, True])
def test_validation_sketch_equals_the_projected_head_gradient_from_a_forward_pass(masked):
    """sketch_eval (no backward) gives P1^T G_s P2 of scale x the sequence's summed token loss, the
    same quantity the training sketch gives for a batch's token mean with scale 1 / (B T); with
    IGNORE targets (prompt/response records) the sum runs over the kept targets only."""
    from domix.data.records import IGNORE

    model = ModelConfig(preset="micro", context_length=16).build(V, seed=0)
    model.eval()
    x = torch.randint(0, V, (5, 17), generator=torch.Generator().manual_seed(4))
    y = x[:, 1:].clone()
    if masked:  # a prompt of 3-7 tokens, then the response, then padding after position 13
        for s in range(5):
            y[s, : 3 + s] = IGNORE
        y[:, 13:] = IGNORE
    sketch = HeadSketch(model.get_output_embeddings(), r1=6, r2=4, seed=3)
    scale = 1.0 / (8 * 16)
    got = sketch.sketch_eval(model, x, y, scale, bf16=False, chunk=2)  # chunks of 2, 2, 1
    assert got.shape == (5, 24) and sketch.flops > 0 and not sketch.out
    h = {}
    head = model.get_output_embeddings()
    handle = head.register_forward_hook(lambda m, i, o: h.update(h=i[0], o=o) or o.retain_grad())
    for s in range(5):
        model.zero_grad()
        logits = model(input_ids=x[s : s + 1, :-1]).logits
        loss = F.cross_entropy(logits.float()[0], y[s], reduction="sum", ignore_index=IGNORE)
        (loss * scale).backward()
        G = h["o"].grad[0].t() @ h["h"][0].detach()
        want = (sketch.P1_VR.t() @ G @ sketch.P2_DR).flatten()
        assert torch.allclose(got[s], want, atol=1e-6, rtol=1e-4)
    handle.remove()
    sketch.remove()
