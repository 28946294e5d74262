"""R&B beyond language models: a digit classifier over five image domains, in a plain PyTorch loop.

The data are scikit-learn's bundled handwritten digits (1,797 images of 8 x 8 pixels; nothing is
downloaded), shown in five domains that ask for different features, like "rotated MNIST":
clean, rotated (90 degrees), noisy (Gaussian, sigma 0.5), inverted (1 - x) and occluded (a 4 x 4
quadrant blanked). Images are split 70/30 into training and test images once; each domain trains
on its own share of the training images (clean all of them, noisy and occluded half, rotated and
inverted a tenth: small domains, as real corpora have) and is tested on every test image, so the
macro accuracy weighs the domains equally.

Training draws every batch from domix's ``MixtureSampler``. ``stratified`` and ``proportional``
keep their weights; ``rnb`` runs R&B: the classifier's last linear layer (``head``) has its
gradient split per domain by ``HeadSplit`` during the ordinary backward, and every ``round_steps``
steps the method reads the per-domain Gram and sets the next weights (domix's ask/tell protocol:
``start``, then ``update`` with an ``Observation``). The loop is the whole integration::

    python examples/classifier.py                   # 3 seeds x stratified, proportional, rnb (~10 s)
    python examples/classifier.py --seeds 0 --steps 200
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from domix.balance.base import Domains, Observation, build_method
from domix.balance.signals.grad_gram import HeadSplit
from domix.data.sampler import MixtureSampler

SHARE = {"clean": 1.0, "rotated": 0.1, "noisy": 0.5, "inverted": 0.1, "occluded": 0.5}  # of the training images


def views(images: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The five domains of the same [N, 8, 8] images in [0, 1], flattened to [N, 64]."""
    n = len(images)
    occluded = images.copy()
    for i, q in enumerate(rng.integers(0, 4, n)):
        occluded[i, 4 * (q // 2) : 4 * (q // 2) + 4, 4 * (q % 2) : 4 * (q % 2) + 4] = 0.0
    out = {"clean": images, "rotated": np.rot90(images, 1, axes=(1, 2)),
           "noisy": np.clip(images + rng.normal(0.0, 0.5, images.shape), 0.0, 1.0),
           "inverted": 1.0 - images, "occluded": occluded}
    return {d: torch.tensor(v.reshape(n, 64), dtype=torch.float32) for d, v in out.items()}


def data(split_seed: int = 0):
    """(train, test): {domain: (x [N, 64], y [N])}, the train sets subsampled by SHARE."""
    x, y = load_digits(return_X_y=True)
    images, labels = x.reshape(-1, 8, 8) / 16.0, torch.tensor(y)
    rng = np.random.default_rng(split_seed)
    order = rng.permutation(len(images))
    cut = int(0.7 * len(images))
    tr, te = order[:cut], order[cut:]
    train_views, test_views = views(images[tr], rng), views(images[te], rng)
    train = {}
    for d, share in SHARE.items():
        keep = torch.from_numpy(rng.permutation(len(tr))[: int(share * len(tr))])
        train[d] = (train_views[d][keep], labels[tr][keep])
    return train, {d: (test_views[d], labels[te]) for d in SHARE}


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                                        torch.nn.ReLU())
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train(method: str, seed: int, steps: int = 400, batch: int = 32, round_steps: int = 20,
          split_seed: int = 0) -> dict[str, float]:
    """Train one classifier with ``method``'s mixture; test accuracy per domain and their mean."""
    train_sets, test_sets = data(split_seed)
    names = tuple(SHARE)
    sizes = np.array([len(train_sets[d][1]) for d in names])
    uniform = np.full(len(names), 1.0 / len(names))  # every domain is tested on the same images
    domains = Domains(names, sizes.astype(np.float64), uniform, uniform)
    mixing = build_method(method, {"round_steps": round_steps} if method == "rnb" else {})
    proposal = mixing.start(domains)
    torch.manual_seed(seed)
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sampler = MixtureSampler(sizes, proposal.weights.weights, seed=seed)
    split = HeadSplit(net.head, len(names)) if "domain_grad_gram" in proposal.signals else None
    held, loss_sum, count = 0, np.zeros(len(names)), np.zeros(len(names))
    for step in range(1, steps + 1):
        dom, idx = sampler.next(batch)  # sorted by domain
        parts = [(train_sets[names[d]][0][idx[dom == d]], train_sets[names[d]][1][idx[dom == d]]) for d in np.unique(dom)]
        x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        if split is not None:
            split.set_domains(torch.from_numpy(dom))
        loss = F.cross_entropy(net(x), y, reduction="none")
        opt.zero_grad()
        loss.mean().backward()
        opt.step()
        np.add.at(loss_sum, dom, loss.detach().numpy())
        np.add.at(count, dom, 1)
        held += 1
        if proposal.hold_steps is not None and held == proposal.hold_steps:
            signals = {"domain_grad_gram": {**split.gram(), "mode": "exact"}} if split is not None else {}
            train_loss = np.where(count > 0, loss_sum / np.maximum(count, 1), np.nan)
            proposal = mixing.update(Observation(step, held, count.copy(), train_loss, signals))
            sampler.set_weights(proposal.weights.weights)
            if split is not None:
                split.reset()
            held, loss_sum, count = 0, np.zeros(len(names)), np.zeros(len(names))
    if split is not None:
        split.remove()
    net.eval()
    with torch.no_grad():
        acc = {d: float((net(x).argmax(1) == y).float().mean()) for d, (x, y) in test_sets.items()}
    return acc | {"macro": float(np.mean(list(acc.values()))), "weights": mixing.result().as_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--methods", default="stratified,proportional,rnb")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = list(SHARE)
    print(f"test accuracy, mean ± std over seeds {seeds} ({args.steps} steps of 32 images)")
    print(f"{'method':<13}" + "".join(f"{d:>14}" for d in [*names, "macro"]))
    for method in args.methods.split(","):
        runs = [train(method, s, args.steps) for s in seeds]
        cells = [np.array([r[d] for r in runs]) for d in [*names, "macro"]]
        print(f"{method:<13}" + "".join(f"{c.mean():>8.3f} ±{c.std():.3f}" for c in cells))
        w = np.mean([[r["weights"][d] for d in names] for r in runs], axis=0)
        print(f"{'  weights':<13}" + "".join(f"{x:>14.3f}" for x in w))


if __name__ == "__main__":
    main()
