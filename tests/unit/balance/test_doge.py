import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from domix.balance.base import Domains, Observation, build_method
from domix.balance.signals.grad_alignment import GradAlignment, GradAlignmentConfig
from domix.data.records import IGNORE
from domix.train.evaluate import per_token_loss
from domix.train.models import ModelConfig

V, T = 200, 16


def _obs(align, norm, present=None, lr=1e-3):
    m = len(align)
    present = np.ones(m, bool) if present is None else np.asarray(present)
    sig = {"align": np.asarray(align, float)[None], "norm": np.asarray(norm, float)[None], "present": present[None],
           "lr": np.array([lr]), "val_loss": np.array([3.0])}
    return Observation(1, 1, np.ones(m), np.ones(m), {"grad_alignment": sig})


def test_update_follows_the_sign_of_the_alignment():
    doge = build_method("doge", {"mu": 0.01})
    p0 = doge.start(Domains(tuple("abc"), np.ones(3)))
    assert np.allclose(p0.weights.weights, 1 / 3) and np.allclose(p0.loss_weights, 1 / 3)
    assert p0.hold_steps == 1 and p0.signals == {"grad_alignment"}
    # domain a helps the validation loss, b hurts it, c is orthogonal
    p1 = doge.update(_obs(align=[2.0, -2.0, 0.0], norm=[1.0, 1.0, 1.0], lr=1e-2))
    w = p1.loss_weights
    assert w[0] > w[2] >= w[1] and np.allclose(p1.weights.weights, 1 / 3)  # sampling stays uniform
    # exact: s = lr * align / mean ||g||, clipped to [0, 5 lr]; alpha = softmax(log alpha + s / mu)
    s = np.clip(1e-2 * np.array([2.0, -2.0, 0.0]) / (1.0 + 1e-6), 0, 5e-2)
    want = np.exp(np.log(np.full(3, 1 / 3)) + s / 0.01)
    assert np.allclose(w, want / want.sum())
    # flipping the sign flips the direction
    p2 = doge.update(_obs(align=[-2.0, 2.0, 0.0], norm=[1.0, 1.0, 1.0], lr=1e-2))
    assert p2.loss_weights[1] > w[1] and p2.loss_weights[0] < w[0]
    assert np.allclose(doge.result().weights, (w + p2.loss_weights) / 2)  # the time average


def test_absent_domain_keeps_its_weight_and_clip_bounds_the_step():
    doge = build_method("doge")
    doge.start(Domains(tuple("abc"), np.ones(3)))
    p = doge.update(_obs(align=[1e6, 0.0, 0.0], norm=[1.0, 1.0, 0.0], present=[True, True, False], lr=1e-3))
    assert p.loss_weights[2] == pytest.approx(1 / 3) and p.info["absent_domains"] == 1
    top = np.exp(5e-3 / 0.05)  # the clip: at most 5 lr / mu in log space per step
    assert p.loss_weights[0] / p.loss_weights[1] == pytest.approx(top)


class _Packed:
    def __init__(self, data, masked=False):  # data: [m, n, T + 1]
        self.data, self.masked = data, masked
        self.num_sequences = np.full(data.shape[0], data.shape[1])

    def gather(self, dom, seq):
        return self.data[dom, seq].numpy()

    def targets(self, batch, dom, seq):  # records-like: a prompt of 2 + seq tokens, the rest the response
        if not self.masked:
            return batch[:, 1:], None
        keep = torch.arange(T)[None] >= 2 + torch.as_tensor(seq)[:, None]
        return batch[:, 1:].masked_fill(~keep, IGNORE), keep


def _model():
    return ModelConfig(preset="micro", context_length=T).build(V, seed=0)


@pytest.mark.parametrize("masked", [False, True])
def test_signal_gradients_match_explicit_per_domain_backward_and_the_objective(masked):
    """masked: prompt/response records, every mean (per domain, validation) over the kept targets only."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, V, (6, T + 1), generator=g)
    dom = torch.tensor([0, 0, 1, 2, 2, 2])
    y = x[:, 1:].clone()
    valid = None
    if masked:  # prompts of 1-6 tokens
        valid = torch.arange(T)[None] >= torch.arange(1, 7)[:, None]
        y = y.masked_fill(~valid, IGNORE)
    val = torch.randint(0, V, (3, 4, T + 1), generator=g)
    model = _model()
    ref = copy.deepcopy(model)
    trainer = SimpleNamespace(
        model=model, forward_model=model, distributed=False, loss_weights=torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
        domain_evaluator=SimpleNamespace(packed=_Packed(val, masked)), cfg=SimpleNamespace(batch_size=4, bf16=False),
        scheduler=SimpleNamespace(get_last_lr=lambda: [1e-3]), valid_BT=valid,
    )
    sig = GradAlignment(GradAlignmentConfig(val_batch_size=5), Domains(tuple("abc"), np.ones(3), np.array([0.2, 0.3, 0.5])), trainer)
    loss_BT = per_token_loss(model, x[:, :-1], y, False)
    assert sig.backward(trainer, loss_BT.mean(), loss_BT, dom) is True
    out = sig.value(trainer)
    # reference: explicit per-domain backward passes on a copy, and the validation batch drawn the same way
    params = list(ref.parameters())

    def grad_of(loss):
        ref.zero_grad()
        loss.backward()
        return torch.cat([p.grad.reshape(-1) for p in params]).double()

    def mean_loss(inputs, targets):  # over the kept targets: cross-entropy's own ignore_index
        logits = ref(input_ids=inputs).logits.float()
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)

    per_domain = [grad_of(mean_loss(x[dom == d][:, :-1], y[dom == d])) for d in range(3)]
    vsampler = GradAlignment(GradAlignmentConfig(val_batch_size=5), Domains(tuple("abc"), np.ones(3), np.array([0.2, 0.3, 0.5])),
                             trainer).val_sampler
    dv, sv = vsampler.next(5)
    vb = val[dv, sv]
    yv, kept = _Packed(val, masked).targets(vb, dv, sv)
    g_val = grad_of(mean_loss(vb[:, :-1], yv))
    want_align = np.array([float(gd @ g_val) for gd in per_domain])
    assert np.allclose(out["align"][0], want_align, rtol=1e-4)
    assert np.allclose(out["norm"][0], [float(gd.norm()) for gd in per_domain], rtol=1e-5)
    assert out["present"][0].tolist() == [True, True, True] and out["lr"][0] == 1e-3
    # the model's gradient is the gradient of the loss-weighted objective: sum_i w_i g_i
    combined = sum(w * gd for w, gd in zip([0.5, 0.3, 0.2], per_domain))
    got = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()
    assert torch.allclose(got, combined, rtol=1e-4, atol=1e-7)
    assert sig.extra == {"backward_passes": 4, "forward_passes": 1, "eval_tokens": 5 * T if kept is None else int(kept.sum())}
    sig.reset()
    assert sig.value(trainer)["align"].shape == (0,)
