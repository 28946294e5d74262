"""DoGraph (Xu et al., "Rethinking Data Mixing from the Perspective of Large Language Models",
arXiv 2604.07963, ACL 2026): model-centric domains from per-sample gradients and a
graph-constrained reweighting of them during training.

From the paper: domains as the model sees them are clusters of per-sample (projected) gradient
vectors, not human labels (m = 11 was best on its GPT-2/SlimPajama runs, U-shaped in m); the
difference of mean gradients of two sets is a squared MMD under a gradient-induced kernel; the
schedule is a graph-constrained optimisation over domain weights, updated during training; the
error signal is prediction minus label (dL/dlogits). The paper does not publish the graph, the
objective, the constraints or the schedule: everything below that is domix's formulation
(``/work/shared/METHODS.md``, docs/dograph.md).

Every ``round_steps`` = R steps (after ``warmup_steps`` at the prior mixture):

    g_s     = flatten((E_s P1)^T (H_s P2));  f_s = g_s / ||g_s||   per-sample LM-head gradient sketch
    C, z    = spherical k-means(f, m), warm-started, ids matched to the previous C (Hungarian)
    mu_j    = mean of f_s over cluster j;  MMD^2_jk = ||mu_j - mu_k||^2   (linear gradient kernel)
    A_jk    = exp(-MMD^2_jk / sigma^2) on k-nearest-neighbour edges;  L = D - A
    nu_j    = mean of g_s over cluster j   (``utility: gradient``; mu_j with ``utility: direction``)
    nu_t    = sum_u pbar_u (mean validation sketch of domain u)    (``target_features: validation``)
            | sum_j pbar_j nu_j   (the training clusters' mix, ``target_features: training``)
    linear: u_j = <nu_j, nu_t> / max_i |<nu_i, nu_t>|,  Q = 0
    mmd:    ||sum_j w_j nu_j - nu_t||^2 / s = (w^T G w - 2 w^T G_t) / s + const,  G_jk = <nu_j, nu_k>
            (unbiased diagonal), G_t = <nu_j, nu_t>, s = max G_jj:  u = 2 G_t / s,  Q = 2 G / s
    w       = argmin_{w in simplex, lo <= w <= hi}  -u.w + w^T Q w / 2 + (gamma/2) w^T L w
                                                     + beta KL(w || w_prev)

solved by exponentiated-gradient steps (``balance.graph.eg_solve``).

Symbols -> variables: R = ``round_steps``, m = ``clusters``, k = ``neighbours``, gamma / beta =
``gamma`` / ``beta``, f_s = the ``sample_grad_features`` signal, C = ``self.centroids``, w = the
cluster weights ``self.w``, p = the sampler's weights over training domains ``self.p``.

domix's choices (where the paper is silent):
- Base partition. Sampling stays over the run's training domains (``data.domains``), used as a fine
  base partition (``subdomain`` or ``regrouped:<name>`` with many clusters; ``original`` allows at
  most as many model-centric domains as it has domains). Each base unit, and so every training
  document in it, belongs to the model-centric domain whose centroid is nearest (cosine) to the
  unit's mean probe feature. The feature of a unit is the one from the last probe that sampled it;
  a unit never probed yet joins the cluster nearest to the mean of all probe features. The sampler
  weight of unit u in cluster c is w_c * tokens_u / tokens_c (token-proportional within a cluster).
- Probe. The features of the last ``probe_steps`` training steps before each refresh (ordinary
  steps: the signal is only switched on for them), capped by the signal's ``max_samples``.
  Default min(16, R): 256 samples at batch 16, so k-means of m = 11 clusters sees ~20 samples per
  cluster (the first formulation's 2 steps gave ~3).
- Prior (warm-up mixture): ``target`` (pbar, default: with ``target: macro`` this is stratified
  over the evaluation domains), ``tokens`` (natural; the first default, the worst static mixture on
  the demo corpus) or ``uniform`` over units.
- Trust region: w_prev_c = the sampling mass the previous mixture put on the units now in cluster c
  (the mixture actually trained on, mapped onto the new clusters).
- Target: pbar over units: ``target: macro`` (default, ``Domains.target_macro``: every evaluation
  domain weighs the same, as in the reported macro loss) or ``documents`` (``Domains.target``:
  share of validation documents), as R&B's ``target``.
- Target features (``target_features``). The paper's theory measures how far two data sets are apart
  for the model as the difference of their mean gradients (a squared MMD under the gradient kernel);
  what a mixture is for is the held-out target. ``validation`` takes nu_t from sketches of
  validation sequences of the training domains (forward pass only, ``sample_grad_features.
  val_samples``), averaged per domain and weighted by pbar; ``training`` (domix's first
  formulation) mixes the training clusters' own means, which makes u = G pbar, R&B's rule on
  model-centric domains, with no information the training probe does not already have.
- Objective (``objective``). ``linear`` (domix's first formulation) maximises u.w, the first-order
  decrease of the target loss: its optimum is a vertex, so across refreshes the trust region only
  slows a drift toward the caps. ``mmd`` minimises the MMD^2 between the training mixture's mean
  gradient and the target's, the quantity of the paper's theory; it is also the descent lemma's
  first- and second-order terms with unit curvature, so it has an interior optimum (the mixture
  that matches the target) and needs ``utility: gradient``. G's diagonal is the unbiased
  ||nu_j||^2 (the plug-in one carries tr(Cov_j)/n_j of sampling noise, as R&B's), G is then
  clipped to positive semi-definite, and both terms are divided by max_j G_jj (scale-free).
- Utility. u_j is meant as the first-order decrease of the target loss per unit of weight on j,
  <E grad_j, E grad_target>: ``utility: gradient`` (default) takes it from the raw sketches, so a
  cluster the model predicts badly (larger dL/dlogits, the paper's prediction-minus-label signal)
  and that points the target's way is worth more. ``utility: direction`` (domix's first
  formulation) uses the normalised directions mu_j that clustering uses (a cosine that ignores how
  much a domain still has to teach). With ``linear`` u is scaled by max |u| (the gradients' scale
  drifts as training goes on); gamma defaults to m since weights are O(1/m).
- Defaults: chosen on the demo corpus at 3 seeds (docs/dograph.md, "Checked against the paper");
  the first formulation is ``{prior: tokens, target: documents, target_features: training,
  objective: linear, utility: direction, probe_steps: 2}``.
- Constraints: lo_c = min(min_weight, hi_c) for every cluster with tokens (0 for a cluster that got
  no base unit); repetition cap hi_c = max_upsample * tokens_c / tokens_total (a cluster is drawn
  at most ``max_upsample`` times as often as in the natural mixture, so a small cluster is not
  repeated for many more epochs than the rest of the data).
- Empty probe (no features): the mixture is kept (``mix/probe_empty``).
- ``result()``: step-weighted average of the unit mixtures trained on (as R&B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ...config import Config, ConfigError
from ...types import Mixture
from .. import graph
from ..base import METHODS, Domains, MixingMethod, Observation, Proposal

SIGNAL = "sample_grad_features"


@dataclass
class DoGraphConfig(Config):
    clusters: int = 11  # m, the paper's best on its data
    round_steps: int = 50  # R: refresh period
    warmup_steps: int | None = None  # at the prior mixture; default R
    probe_steps: int | None = None  # steps before each refresh whose samples are sketched; min(16, R)
    prior: Literal["tokens", "target", "uniform"] = "target"
    target: Literal["documents", "macro"] = "macro"  # pbar (see the module docstring)
    utility: Literal["direction", "gradient"] = "gradient"  # u from raw or normalised sketches
    target_features: Literal["validation", "training"] = "validation"  # where nu_target comes from
    objective: Literal["mmd", "linear"] = "mmd"  # MMD to the target, or -u.w (module docstring)
    kernel: Literal["linear", "rbf"] = "linear"  # MMD^2: closed form, or unbiased RBF estimate
    neighbours: int = 3  # k of the kNN graph
    gamma: float | None = None  # Laplacian smoothness; default m
    beta: float = 1.0  # KL trust region
    min_weight: float = 0.005
    max_upsample: float = 5.0  # repetition cap, relative to the natural share of tokens
    eg_steps: int = 200
    kmeans_iters: int = 50
    seed: int = 0

    def validate(self) -> None:
        p = "mixing.params"
        if self.clusters < 1:
            raise ConfigError(f"{p}.clusters must be at least 1")
        if self.round_steps < 1 or (self.probe_steps is not None and not 1 <= self.probe_steps <= self.round_steps):
            raise ConfigError(f"{p}: need 1 <= probe_steps <= round_steps")
        if self.warmup_steps is not None and self.warmup_steps < self.probe:
            raise ConfigError(f"{p}.warmup_steps must be at least probe_steps ({self.probe})")
        if self.beta <= 0 or (self.gamma is not None and self.gamma < 0):
            raise ConfigError(f"{p}: beta must be positive and gamma non-negative")
        if not 0 <= self.min_weight < 1 or self.max_upsample < 1:
            raise ConfigError(f"{p}: need 0 <= min_weight < 1 and max_upsample >= 1")
        if self.neighbours < 1:
            raise ConfigError(f"{p}.neighbours must be at least 1")
        if self.objective == "mmd" and self.utility != "gradient":
            raise ConfigError(f"{p}: objective mmd compares mean gradients: set utility: gradient "
                              "(or objective: linear)")

    @property
    def probe(self) -> int:
        """The probe steps in force: ``probe_steps``, or min(16, R) (256 samples at batch 16)."""
        return self.probe_steps if self.probe_steps is not None else min(16, self.round_steps)


@METHODS.register("dograph")
class DoGraph(MixingMethod):
    Config = DoGraphConfig
    signals = frozenset({SIGNAL})
    reference = "Xu et al. 2026, DoGraph (arXiv 2604.07963); graph, objective and schedule: domix"
    cost = ("LM-head gradient sketch on probe_steps of every R steps (no extra backward), and one forward "
            "pass over val_samples validation sequences per refresh")

    def start(self, domains: Domains) -> Proposal:
        self.domains = domains
        U, m = len(domains), self.config.clusters
        self.tokens = np.asarray(domains.tokens, dtype=np.float64)
        target = domains.target_macro if self.config.target == "macro" else domains.target
        target = np.ones(U) if target is None else np.asarray(target, dtype=np.float64)
        self.target = target / target.sum() if target.sum() > 0 else np.full(U, 1.0 / U)
        prior = {"tokens": self.tokens, "target": self.target, "uniform": np.ones(U)}[self.config.prior]
        prior = np.where(self.tokens > 0, prior, 0.0)
        self.p = prior / prior.sum() if prior.sum() > 0 else np.where(self.tokens > 0, 1.0, 0.0) / (self.tokens > 0).sum()
        self.rng = np.random.default_rng(self.config.seed)
        self.centroids: np.ndarray | None = None
        self.assign = np.full(U, -1, dtype=np.int64)  # model-centric domain of each base unit
        self.unit_feat = np.zeros((U, 0))  # last probe feature per unit (D set at the first probe)
        self.unit_seen = np.zeros(U, dtype=bool)
        self.w = np.zeros(m)
        self.weight_steps = np.zeros(U)
        self.refreshes: list[dict[str, Any]] = []
        self._current = Mixture(domains.names, self.p)
        warm = self.config.round_steps if self.config.warmup_steps is None else self.config.warmup_steps
        return self._train(warm, {})

    def _train(self, steps: int, info: dict[str, float]) -> Proposal:
        """Train ``steps`` steps on the current mixture, the last ``probe_steps`` of them probed."""
        plain = steps - self.config.probe
        if plain > 0:
            return Proposal(self._current, plain, info=info)
        return self._probe(info)

    def _probe(self, info: dict[str, float]) -> Proposal:
        return Proposal(self._current, self.config.probe, frozenset({SIGNAL}), info=info)

    def update(self, obs: Observation) -> Proposal:
        self.weight_steps += self.p * obs.steps
        if SIGNAL not in obs.signals:  # the plain part of a round ended: probe next
            return self._probe({})
        info = self._refresh(obs.signals[SIGNAL], obs.step, obs)
        return self._train(self.config.round_steps, info)

    def finish(self, steps: int) -> None:
        self.weight_steps += self.p * steps  # the last, unfinished hold counts in result() too

    # ------------------------------------------------------------------------------- refresh

    def _refresh(self, sig: dict[str, Any], step: int, obs: Observation) -> dict[str, float]:
        cfg, m = self.config, self.config.clusters
        X = np.asarray(sig["features"], dtype=np.float64)
        units = np.asarray(sig["domains"], dtype=np.int64)
        if len(units) == 0:
            return {"refresh": 1.0, "probe_empty": 1.0}
        ok = np.linalg.norm(X, axis=1) > 0
        raw, units = X[ok], units[ok]
        X = graph.normalize_rows(raw)
        if len(X) == 0:
            return {"refresh": 1.0, "probe_empty": 1.0}
        if self.unit_feat.shape[1] != X.shape[1]:
            self.unit_feat = np.zeros((len(self.domains), X.shape[1]))
        # 1. spherical k-means, warm-started, ids matched to the previous refresh
        C, z, iters = graph.spherical_kmeans(X, m, self.rng, self.centroids, cfg.kmeans_iters)
        relabelled = 0
        if self.centroids is not None:
            perm = graph.match_clusters(self.centroids, C)
            relabelled = int((perm != np.arange(m)).sum())
            C_new = np.empty_like(C)
            C_new[perm] = C
            C, z = C_new, perm[z]
        self.centroids = C
        sizes = np.bincount(z, minlength=m)
        # 2. every base unit to a model-centric domain
        for u in np.unique(units):
            self.unit_feat[u] = X[units == u].mean(0)
        self.unit_seen[np.unique(units)] = True
        has = sizes > 0
        old_assign = self.assign.copy()
        sim_UK = np.where(has, graph.normalize_rows(self.unit_feat) @ C.T, -np.inf)
        fallback = int(np.where(has, C @ X.mean(0), -np.inf).argmax())
        self.assign = np.where(self.unit_seen, sim_UK.argmax(1), fallback)
        tok_c = np.bincount(self.assign, weights=self.tokens, minlength=m)
        active = np.flatnonzero(tok_c > 0)
        # 3. the domain graph over clusters that hold tokens
        mmd2 = graph.mmd2_clusters(X, z, active, cfg.kernel)
        A, sigma2 = graph.knn_graph(mmd2, cfg.neighbours)
        L = graph.laplacian(A)
        # 4. utility: alignment of each cluster's mean with the target's mean feature
        F = raw if cfg.utility == "gradient" else X
        nu = np.stack([F[z == c].mean(0) for c in active])
        nu_t, from_val = self._target_mean(sig, nu, active, tok_c)
        u, Q = _utility(F, z, active, nu, nu_t, cfg.objective)
        # 5. graph-constrained exponentiated-gradient update
        w_prev = np.bincount(self.assign, weights=self.p, minlength=m)[active]
        hi = cfg.max_upsample * tok_c[active] / tok_c.sum()
        lo = np.minimum(min(cfg.min_weight, 1.0 / len(active)), hi)
        gamma = float(m if cfg.gamma is None else cfg.gamma)
        w_a = graph.eg_solve(u, L, w_prev, gamma, cfg.beta, lo, hi, cfg.eg_steps, Q=Q)
        p_prev = self.p
        self.w = np.zeros(m)
        self.w[active] = w_a
        self.p = np.where(self.tokens > 0, self.w[self.assign] * self.tokens / np.maximum(tok_c[self.assign], 1e-300), 0.0)
        self.p /= self.p.sum()
        self._current = Mixture(self.domains.names, self.p)
        zero = np.zeros(len(active))
        free = graph.eg_solve(u, np.zeros_like(L), w_prev, 0.0, cfg.beta, zero, zero + 1, cfg.eg_steps, Q=Q)
        loss_c = _cluster_loss(self.assign, obs.train_loss, obs.tokens, m)[active]
        l1 = float(np.abs(self.p - p_prev).sum())
        self._record(step, X, z, units, active, mmd2, A, u, w_a, free=free, loss=loss_c, l1=l1, w_prev=w_prev, hi=hi)
        edges = A[np.triu(A > 0, 1)]
        info = {
            "round": float(len(self.refreshes)),
            "l1_change": l1,
            "graph_weight_mean": float(edges.mean()) if len(edges) else 0.0,
            "graph_weight_min": float(edges.min()) if len(edges) else 0.0,
            "graph_weight_max": float(edges.max()) if len(edges) else 0.0,
            "refresh": 1.0,
            "target_from_validation": float(from_val),
            "probe_samples": float(len(X)),
            "units_seen": float(self.unit_seen.sum()),
            "units_reassigned": float(((old_assign >= 0) & (old_assign != self.assign)).sum()),
            "clusters_active": float(len(active)),
            "kmeans_iters": float(iters),
            "relabelled": float(relabelled),
            "cohesion": float((X * C[z]).sum(1).mean()),
            "graph_edges": float((A > 0).sum() / 2),
            "sigma2": sigma2,
            "utility_spread": float(u.max() - u.min()),
            "at_cap": float(np.isclose(w_a, hi).sum()),
            "at_min": float(np.isclose(w_a, lo).sum()),
            "objective": graph.objective(w_a, u, L, np.maximum(w_prev, 1e-12) / np.maximum(w_prev, 1e-12).sum(), gamma, cfg.beta, Q),
        }
        info.update({f"cluster_weight/c{j:02d}": float(self.w[j]) for j in range(m)})
        for key, vals in (("cluster_utility", u), ("cluster_unconstrained", free), ("cluster_train_loss", loss_c)):
            info.update({f"{key}/c{j:02d}": float(v) for j, v in zip(active, vals)})
        return info

    def _target_mean(self, sig: dict[str, Any], nu: np.ndarray, active: np.ndarray,
                     tok_c: np.ndarray) -> tuple[np.ndarray, bool]:
        """nu_target: the pbar-weighted mean of the validation sketches of the training domains
        (``target_features: validation``; per domain, then weighted by pbar over the domains that
        were sketched), or the pbar-weighted mix of the training clusters' means (``training``, and
        the fallback when the signal has no validation sketches)."""
        if self.config.target_features == "validation":
            V = np.asarray(sig.get("val_features", np.zeros((0, nu.shape[1]))), dtype=np.float64)
            vd = np.asarray(sig.get("val_domains", np.zeros(0)), dtype=np.int64)
            keep = np.linalg.norm(V, axis=1) > 0 if len(V) else np.zeros(0, dtype=bool)
            V, vd = V[keep], vd[keep]
            if len(V) and V.shape[1] == nu.shape[1]:
                V = V if self.config.utility == "gradient" else graph.normalize_rows(V)
                units = np.unique(vd)
                pbar = self.target[units]
                if pbar.sum() > 0:
                    return (pbar / pbar.sum()) @ np.stack([V[vd == v].mean(0) for v in units]), True
        pbar_c = np.bincount(self.assign, weights=self.target, minlength=len(tok_c))[active]
        pbar_c = pbar_c / pbar_c.sum() if pbar_c.sum() > 0 else tok_c[active] / tok_c[active].sum()
        return pbar_c @ nu, False

    def _record(self, step, X, z, units, active, mmd2, A, u, w_a, free, loss, l1, w_prev, hi) -> None:
        """What the analysis plots need, kept small: PCA of the probe, unit Gram, graph, the
        utility, the trust-region-only and the constrained cluster weights, the unit weights."""
        Z, ratio = graph.pca2(X)
        present = np.unique(units)
        means = np.stack([X[units == v].mean(0) for v in present])
        self.refreshes.append({
            "step": int(step),
            "pca": np.round(Z, 4).tolist(),
            "pca_variance": ratio.round(4).tolist(),
            "sample_unit": units.tolist(),
            "sample_cluster": z.tolist(),
            "units": present.tolist(),
            "unit_counts": [int((units == v).sum()) for v in present],
            "unit_gram": np.round(means @ means.T, 5).tolist(),
            "assign": self.assign.tolist(),
            "clusters": active.tolist(),
            "mmd2": np.round(mmd2, 6).tolist(),
            "graph": np.round(A, 6).tolist(),
            "utility": np.round(u, 6).tolist(),
            "w_prev": w_prev.tolist(),
            "cap": hi.tolist(),
            "cluster_weights": w_a.tolist(),
            "unconstrained": free.tolist(),
            "cluster_train_loss": [None if not np.isfinite(x) else float(x) for x in loss],
            "weights": self.p.tolist(),
            "l1_change": l1,
        })

    # ------------------------------------------------------------------------------- state

    def result(self) -> Mixture:
        if self.weight_steps.sum() == 0:
            return self._current
        return Mixture(self.domains.names, self.weight_steps)

    def diagnostics(self) -> dict[str, Any]:
        return {"clusters": self.config.clusters, "refreshes": self.refreshes}

    def state_dict(self) -> dict[str, Any]:
        return {
            "p": self.p.copy(), "w": self.w.copy(), "assign": self.assign.copy(),
            "centroids": None if self.centroids is None else self.centroids.copy(),
            "unit_feat": self.unit_feat.copy(), "unit_seen": self.unit_seen.copy(),
            "weight_steps": self.weight_steps.copy(), "rng": self.rng.bit_generator.state,
            "refreshes": list(self.refreshes),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = np.asarray(state["p"], dtype=np.float64)
        self.w = np.asarray(state["w"], dtype=np.float64)
        self.assign = np.asarray(state["assign"], dtype=np.int64)
        self.centroids = None if state["centroids"] is None else np.asarray(state["centroids"], dtype=np.float64)
        self.unit_feat = np.asarray(state["unit_feat"], dtype=np.float64)
        self.unit_seen = np.asarray(state["unit_seen"], dtype=bool)
        self.weight_steps = np.asarray(state["weight_steps"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]
        self.refreshes = list(state["refreshes"])
        self._current = Mixture(self.domains.names, self.p)


def _utility(F: np.ndarray, z: np.ndarray, active: np.ndarray, nu: np.ndarray, nu_t: np.ndarray,
             objective: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The linear and quadratic terms of the weight objective (minimised as -u.w + w^T Q w / 2).

    ``linear``: u = nu @ nu_t / max |nu @ nu_t|, no Q. ``mmd``: ||sum_j w_j nu_j - nu_t||^2 / s =
    (w^T G w - 2 w^T G_t) / s with G_jk = <nu_j, nu_k> (the diagonal unbiased: the plug-in
    ||nu_j||^2 carries tr(Cov_j) / n_j of sampling noise; then clipped to positive semi-definite)
    and s = max_j G_jj, so u = 2 G_t / s and Q = 2 G / s."""
    g_t = nu @ nu_t
    if objective == "linear":
        scale = np.abs(g_t).max()
        return (g_t / scale if scale > 0 else np.zeros_like(g_t)), None
    G = nu @ nu.T
    for i, c in enumerate(active):
        Fc = F[z == c]
        if len(Fc) > 1:
            S = Fc.sum(0)
            G[i, i] = (S @ S - (Fc * Fc).sum()) / (len(Fc) * (len(Fc) - 1))
    lam, vec = np.linalg.eigh(G)
    G = (vec * np.maximum(lam, 0.0)) @ vec.T
    s = float(np.diag(G).max())
    if s <= 0:
        return np.zeros(len(active)), None
    return 2 * g_t / s, 2 * G / s


def _cluster_loss(assign: np.ndarray, loss: np.ndarray, tokens: np.ndarray, m: int) -> np.ndarray:
    """Token-weighted mean training loss of each cluster over the round (NaN where no tokens)."""
    loss, tokens = np.asarray(loss, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    seen = (tokens > 0) & np.isfinite(loss) & (assign >= 0)
    tok = np.bincount(assign[seen], weights=tokens[seen], minlength=m)
    tot = np.bincount(assign[seen], weights=(loss * tokens)[seen], minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tok > 0, tot / tok, np.nan)
