"""``domain_grad_gram``: per-domain output-layer gradients from the normal backward pass (R&B).

The layer is the model's output layer (the LM head) by default; ``layer: <module path>`` names any
``nn.Linear`` of the model instead (e.g. ``classifier`` or ``model.layers.3.mlp.down_proj``), for
any model whose loss splits per example: the algebra below holds for every linear layer, with H its
input and E the gradient of its output. Its input may be [B, d] (a classifier), [B, T, d] or have
more middle dimensions (flattened); the layer must run once per forward pass.

For the LM head ``s = W h`` the weight gradient of a batch is ``dL/dW = E^T H`` with E = dL/dlogits
[N, V] (softmax minus one-hot, scaled by the objective) and H the final hidden states [N, d]. The
batch is sorted by domain, so ``E^T H = sum_i E_i^T H_i`` over contiguous per-domain blocks: the head's
backward is replaced by exactly those blocks. Their sum is the model's gradient (unchanged, no extra
matrix product: the same FLOPs in m pieces); each block is also added to domain i's accumulator for
the round. With tied input/output embeddings only the head's share is split; autograd adds the
embedding's share to the same ``.grad`` as usual.

Cost: the P blocks of a step (P <= batch size domains present) are written into one buffer that is
kept between steps (no fresh V x d allocations, whose page faults cost as much as the adds), summed
into the model's gradient in one reduction and added to the accumulators in one ``index_add_``: two
passes over P x V x d floats on top of the GEMM (docs/benchmarks.md measures it). Peak memory adds
the buffer, P x V x d x 4 bytes.

Two accumulator modes (``mixing.signals.domain_grad_gram.mode``):

- ``exact``: one fp32 V x d accumulator per domain (m * V * d * 4 bytes).
- ``sketch``: a seeded count sketch of the vocabulary rows (``rows`` buckets, random signs): each
  V x d block is folded to rows x d. Inner products of sketches are unbiased estimates of the exact
  ones; memory is m * rows * d * 4 bytes. Its error on the Gram is measured in docs/benchmarks.md.

``value()`` returns ``{"gram": <g_i, g_j> [m, m], "counts": examples per domain [m], "n2": [m]}``
for the round, summed over data-parallel ranks (accumulators and counts are all-reduced before the
Gram), and ``"sq": [m]`` with ``self_terms: true``. ``sq`` sums the squared norm of every per-step
(per-rank) block of domain i and ``n2`` the squares of their example counts: with them a method can
remove the finite-sample bias of the diagonal, E<g_i, g_i> / n_i^2 = ||mean gradient||^2 +
tr(Cov_i) / n_i, by the unbiased estimate (<g_i, g_i> - sq_i) / (n_i^2 - n2_i) (the cross terms of
distinct steps only). ``sq`` costs one more pass over every V x d block, so it is off by default
(R&B's ``gram: unbiased`` asks for it). In sketch mode ``sq`` holds the exact blocks' norms: the
sketched inner product is unbiased for the exact one, so the estimate stays unbiased.
"""

from __future__ import annotations

import types
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ...config import Config, ConfigError
from ...train.checkpoint import ResumeError
from . import SIGNALS, Signal, all_reduce_


@dataclass
class GradGramConfig(Config):
    mode: Literal["exact", "sketch"] = "exact"
    rows: int = 1024  # sketch buckets over the vocabulary rows
    seed: int = 0
    self_terms: bool = False  # also sum each step's squared block norms (``sq``): one more pass per block
    layer: str | None = None  # module path of the nn.Linear to split; None = the model's output layer

    def validate(self) -> None:
        if self.rows < 1:
            raise ConfigError("mixing.signals.domain_grad_gram.rows must be positive")


class _SplitHead(torch.autograd.Function):
    """logits = F.linear(h, W, b); backward computes dL/dW as per-domain blocks (see module doc)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, h_BTD, w_VD, b_V, split):
        ctx.save_for_backward(h_BTD, w_VD)
        ctx.split, ctx.has_bias = split, b_V is not None
        return F.linear(h_BTD, w_VD, b_V)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, e_BTV):
        h_BTD, w_VD = ctx.saved_tensors
        dtype = e_BTV.dtype
        grad_h = (e_BTV @ w_VD.to(dtype)).to(h_BTD.dtype) if ctx.needs_input_grad[0] else None
        # the per-domain blocks and their sum in fp32 (under bf16 autocast: one rounding, not m)
        grad_w = ctx.split.weight_grad(e_BTV.float(), h_BTD.float()).to(w_VD.dtype)
        grad_b = e_BTV.reshape(-1, e_BTV.shape[-1]).sum(0).to(w_VD.dtype) if ctx.has_bias else None
        return grad_h, grad_w, grad_b, None


def _sparse_rows(bucket_V: torch.Tensor, sign_V: torch.Tensor, rows: int) -> torch.Tensor:
    """The count sketch as a sparse [rows, V] matrix (CSR): entry (bucket[v], v) = sign[v]."""
    order = torch.argsort(bucket_V, stable=True)
    crow = torch.zeros(rows + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(torch.bincount(bucket_V, minlength=rows), 0)
    with warnings.catch_warnings():  # torch calls its sparse CSR support "beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, order, sign_V[order], (rows, len(bucket_V)))


class HeadSplit:
    """Installs the split backward on a model's output layer and holds the per-domain sums."""

    def __init__(self, head: torch.nn.Module, m: int, mode: str = "exact", rows: int = 1024, seed: int = 0,
                 self_terms: bool = False) -> None:
        if not isinstance(head, torch.nn.Linear):
            raise TypeError(f"the output layer is {type(head).__name__}, not nn.Linear: cannot split its gradient")
        self.head, self.m, self.mode = head, m, mode
        V, D = head.weight.shape
        if mode == "exact":
            self.acc = torch.zeros(m, V, D)
        else:
            g = torch.Generator().manual_seed(seed)
            bucket_V = torch.randint(0, rows, (V,), generator=g)
            sign_V = (torch.randint(0, 2, (V, 1), generator=g) * 2 - 1).float().flatten()
            self.sketch_RV = _sparse_rows(bucket_V, sign_V, rows)
            self.acc = torch.zeros(m, rows, D)
        self.counts = torch.zeros(m, dtype=torch.float64)
        self.self_terms = self_terms
        self.sq = torch.zeros(m, dtype=torch.float64)  # sum over steps of ||block_i||^2 (self_terms)
        self.n2 = torch.zeros(m, dtype=torch.float64)  # sum over steps of (examples in block_i)^2
        self.segments: list[tuple[int, int, int]] | None = None
        self.order: torch.Tensor | None = None
        self._buf = torch.empty(0, V, D)  # the step's per-domain blocks, kept between steps
        head.forward = types.MethodType(lambda mod, h: _SplitHead.apply(h, mod.weight, mod.bias, self), head)

    @property
    def nbytes(self) -> int:
        return self.acc.numel() * self.acc.element_size()

    def set_domains(self, dom_B: torch.Tensor) -> None:
        """The domain of each sequence in the coming batch (contiguous blocks when sorted)."""
        self.order = None if bool((dom_B[1:] >= dom_B[:-1]).all()) else torch.argsort(dom_B, stable=True)
        d = dom_B if self.order is None else dom_B[self.order]
        change = torch.nonzero(torch.diff(d, prepend=d[:1] - 1)).flatten().tolist() + [len(d)]
        self.segments = [(int(d[a]), a, b) for a, b in zip(change[:-1], change[1:])]
        step_counts = torch.bincount(dom_B, minlength=self.m).double()
        self.counts += step_counts
        self.n2 += step_counts.square()

    def weight_grad(self, e_BTV: torch.Tensor, h_BTD: torch.Tensor) -> torch.Tensor:
        if self.segments is None:
            raise RuntimeError("HeadSplit.set_domains was not called before the backward pass")
        B = e_BTV.shape[0]  # [B, d] (one row an example) and [B, ..., d] both become [B, T, d]
        e_BTV, h_BTD = e_BTV.reshape(B, -1, e_BTV.shape[-1]), h_BTD.reshape(B, -1, h_BTD.shape[-1])
        if self.order is not None:
            e_BTV, h_BTD = e_BTV[self.order], h_BTD[self.order]
        T, (V, D) = e_BTV.shape[1], self.head.weight.shape
        e_NV, h_ND = e_BTV.flatten(0, 1), h_BTD.flatten(0, 1)
        P = len(self.segments)
        if self._buf.shape[0] < P:
            self._buf = torch.empty(P, V, D)
        blocks = self._buf[:P]
        sizes = {b - a for _, a, b in self.segments}
        if len(sizes) == 1 and P > 1:  # equal shares (stratified weights): one batched product
            n = sizes.pop() * T
            torch.bmm(e_NV.reshape(P, n, V).transpose(1, 2), h_ND.reshape(P, n, D), out=blocks)
        else:
            for i, (_, a, b) in enumerate(self.segments):
                torch.mm(e_NV[a * T : b * T].t(), h_ND[a * T : b * T], out=blocks[i])
        grad_w = blocks.sum(0) if P > 1 else blocks[0].clone()
        doms = torch.tensor([d for d, _, _ in self.segments])
        if self.self_terms:
            self.sq.index_add_(0, doms, torch.linalg.vector_norm(blocks, dim=(1, 2)).double().square())
        if self.mode == "exact":
            self.acc.index_add_(0, doms, blocks)
        else:  # S block: a sparse product, one pass over the block
            for i, d in enumerate(doms.tolist()):
                self.acc[d].add_(self.sketch_RV @ blocks[i])
        self.segments = None
        return grad_w

    def gram(self) -> dict[str, np.ndarray]:
        """<g_i, g_j> over the round, examples per domain, per-step block norms and counts squared,
        summed over ranks."""
        for t in (self.acc, self.counts, self.sq, self.n2):  # in place: reset() follows
            all_reduce_(t)
        flat = self.acc.flatten(1)
        gram = (flat @ flat.t()).double()
        out = {"gram": gram.numpy(), "counts": self.counts.numpy().copy(), "n2": self.n2.numpy().copy()}
        return out | ({"sq": self.sq.numpy().copy()} if self.self_terms else {})

    def reset(self) -> None:
        for t in (self.acc, self.counts, self.sq, self.n2):
            t.zero_()

    def remove(self) -> None:
        if "forward" in vars(self.head):
            del self.head.forward


def split_layer(model: torch.nn.Module, path: str | None) -> torch.nn.Linear:
    """The nn.Linear at module path ``path`` (None: the output layer); a clear error otherwise, listing
    the model's linear layers."""
    if path is None and hasattr(model, "get_output_embeddings"):
        layer, what = model.get_output_embeddings(), "the model's output layer"
    else:
        layer = dict(model.named_modules()).get(path) if path is not None else None
        what = f"mixing.signals.domain_grad_gram.layer={path}"
    if isinstance(layer, torch.nn.Linear):
        return layer
    linear = [n for n, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)]
    shown = ", ".join(linear[:12]) + (f" ... ({len(linear)} in all)" if len(linear) > 12 else "")
    reason = ("no such module" if layer is None and path is not None else
              "the model has no output layer: name one with mixing.signals.domain_grad_gram.layer"
              if layer is None else f"it is a {type(layer).__name__}, not an nn.Linear")
    raise ConfigError(f"cannot split the gradient of {what}: {reason}. "
                      f"The model's linear layers: {shown or 'none'}")


@SIGNALS.register("domain_grad_gram")
class DomainGradGram(Signal):
    Config = GradGramConfig
    masked_loss = True  # an ignored target's logit gradient is 0, so its rows add nothing to a block

    def __init__(self, config: GradGramConfig, domains, trainer) -> None:
        super().__init__(config, domains, trainer)
        head = split_layer(trainer.model, config.layer)
        self.split = HeadSplit(head, len(domains), config.mode, config.rows, config.seed, config.self_terms)

    def on_batch(self, trainer, dom_B: torch.Tensor) -> None:
        self.split.set_domains(dom_B)

    def value(self, trainer) -> dict[str, Any]:
        return {**self.split.gram(), "mode": self.config.mode}

    def reset(self) -> None:
        self.split.reset()

    def close(self) -> None:
        self.split.remove()
        self.split.acc = self.split._buf = torch.zeros(0)

    def state_dict(self) -> dict[str, Any]:
        # The accumulators are rank-local: save their sum over ranks (every rank calls this) and,
        # on resume, give it all to rank 0, so the round's Gram is the same as uninterrupted.
        sums = {k: all_reduce_(getattr(self.split, k).clone()) for k in ("acc", "counts", "sq", "n2")}
        return {**sums, "mode": self.config.mode, "rows": self.config.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = (state.get("mode"), state.get("rows"))
        if state["acc"].shape != self.split.acc.shape:
            raise ResumeError(f"cannot resume domain_grad_gram: the checkpoint's accumulator (mode, rows) = "
                               f"{saved} does not fit this run's ({self.config.mode}, {self.config.rows})")
        first = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
        for k in ("acc", "counts", "sq", "n2"):
            saved_t = state.get(k, torch.zeros_like(getattr(self.split, k)))  # sq, n2: older checkpoints lack them
            getattr(self.split, k).copy_(saved_t if first else torch.zeros_like(saved_t))
