import types

import numpy as np
import pytest
import torch

from domix.balance.base import Domains, Observation, build_method
from domix.balance.signals.excess_loss import ExcessLoss, ExcessLossConfig
from domix.config import ConfigError
from domix.train import checkpoint as ckpt


def _domains(m=3):
    return Domains(tuple(f"d{i}" for i in range(m)), np.array([1.0, 2.0, 7.0][:m]), None)


def _obs(excess_per_token, tokens=(100.0, 100.0, 100.0)):
    t = np.asarray(tokens)
    sig = {"excess_loss": {"excess": np.asarray(excess_per_token) * t, "tokens": t}}
    return Observation(1, 1, t, np.ones(len(t)), sig)


def test_raises_the_weight_of_the_domain_with_the_largest_excess_loss():
    dr = build_method("doremi")
    p0 = dr.start(_domains())
    assert np.allclose(p0.loss_weights, 1 / 3) and np.allclose(p0.weights.weights, 1 / 3)
    p1 = dr.update(_obs([0.1, 0.9, 0.3]))
    a = p1.loss_weights
    assert a[1] > a[2] > a[0]
    # exact step: alpha' = alpha * exp(eta * lambda) normalised; alpha = (1 - c) alpha' + c / m
    want = np.exp([0.1, 0.9, 0.3]) / np.exp([0.1, 0.9, 0.3]).sum()
    assert np.allclose(a, (1 - 1e-3) * want + 1e-3 / 3)
    # batches keep coming from the reference mixture; only the objective is reweighted
    assert np.allclose(p1.weights.weights, 1 / 3) and p1.hold_steps == 1


def test_smoothing_keeps_every_weight_at_least_c_over_m_and_output_is_the_time_average():
    dr = build_method("doremi", {"eta": 5.0, "smoothing": 0.01, "sample": "proportional"})
    p = dr.start(_domains())
    assert np.allclose(p.weights.weights, [0.1, 0.2, 0.7])
    alphas = []
    for _ in range(50):  # domain 2 always has a large excess loss: weights head to one-hot
        p = dr.update(_obs([0.0, 0.0, 3.0]))
        alphas.append(p.loss_weights)
        assert np.all(p.loss_weights >= 0.01 / 3 - 1e-15)
    assert p.loss_weights[0] == pytest.approx(0.01 / 3, rel=1e-6)
    assert np.allclose(dr.result().weights, np.mean(alphas, axis=0))


def test_absent_domain_keeps_its_previous_score_and_config_is_strict():
    dr = build_method("doremi")
    dr.start(_domains())
    dr.update(_obs([0.5, 0.0, 0.0]))
    before = dr.alpha.copy()
    dr.update(_obs([0.0, 0.0, 0.0], tokens=(0.0, 100.0, 100.0)))  # d0 absent: scores 0.5 again
    want = before * np.exp([0.5, 0.0, 0.0])
    assert np.allclose(dr.alpha, (1 - 1e-3) * want / want.sum() + 1e-3 / 3)
    with pytest.raises(ConfigError, match="smoothing"):
        build_method("doremi", {"smoothing": 2.0})


def test_excess_loss_signal_clips_per_token_against_the_reference(tmp_path):
    torch.manual_seed(0)
    ref_model = _Unigram(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    ckpt.save_checkpoint(tmp_path, 1, {"model": ref_model.state_dict()})
    trainer = types.SimpleNamespace(model=_Unigram(torch.zeros(4)), batch_BT=None,
                                    cfg=types.SimpleNamespace(bf16=False))
    sig = ExcessLoss(ExcessLossConfig(reference=str(tmp_path)), _domains(2), trainer)
    assert sig.ref is not trainer.model and not any(p.requires_grad for p in sig.ref.parameters())
    batch = torch.tensor([[0, 3, 3, 0], [1, 2, 1, 0]])
    trainer.batch_BT, trainer.targets_BT, trainer.valid_BT = batch, batch[:, 1:], None
    with torch.no_grad():
        ref_BT = torch.nn.functional.cross_entropy(ref_model(batch[:, :-1]).logits.transpose(1, 2),
                                                   batch[:, 1:], reduction="none")
    loss_BT = ref_BT + torch.tensor([[1.0, -2.0, 0.5], [-1.0, -1.0, 0.25]])
    sig.on_loss(trainer, loss_BT, torch.tensor([0, 1]))
    v = sig.value(trainer)
    # per token max(l - l_ref, 0), summed per domain (a domain mean first would give 0 for d0 and d1)
    assert np.allclose(v["excess"], [1.5, 0.25], atol=1e-6) and np.allclose(v["tokens"], [3, 3])
    assert sig.extra["forward_passes"] == 1 and sig.extra["forward_tokens"] == 6
    state = sig.state_dict()
    sig.reset()
    sig.load_state_dict(state)
    assert np.allclose(sig.value(trainer)["excess"], [1.5, 0.25], atol=1e-6)
    # prompt/response records: ignored targets add neither excess nor tokens
    sig.reset()
    trainer.targets_BT = batch[:, 1:].masked_fill(torch.tensor([[True, False, False], [False, False, True]]), -100)
    trainer.valid_BT = trainer.targets_BT != -100
    sig.on_loss(trainer, loss_BT * trainer.valid_BT, torch.tensor([0, 1]))
    assert np.allclose(sig.value(trainer)["excess"], [0.5, 0.0], atol=1e-6) and np.allclose(sig.value(trainer)["tokens"], [2, 2])
    with pytest.raises(ConfigError, match="reference run"):
        ExcessLossConfig.from_dict({}, _path="mixing.signals.excess_loss")


class _Unigram(torch.nn.Module):
    """A model whose logits are the same bias at every position."""

    def __init__(self, bias):
        super().__init__()
        self.bias = torch.nn.Parameter(bias.clone())

    def forward(self, input_ids):
        B, T = input_ids.shape
        return types.SimpleNamespace(logits=self.bias.expand(B, T, -1))
