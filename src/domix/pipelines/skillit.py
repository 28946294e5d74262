"""``domix mix skillit``: Skill-It's skills graph from m short single-domain runs (Chen et al. 2023).

Brute-force graph of the paper: from the same initial model, train ``steps`` steps on domain i
only (one ordinary run with a one-hot ``fixed`` mixture), then measure the validation loss of every
training domain j (the same fixed sequences the ``eval_loss`` signal uses):

    A_ij = (L_j(init) - L_j(after training on i)) / L_j(init)

The artifact ``graph.json`` (``domains``, ``graph`` A[i][j], the losses, ``extra_compute``) is
what ``mixing.method=skillit mixing.params.graph=<out>/graph.json`` reads; the online method then
reports the m runs in its own extra compute.

domix chooses: the initial model is the run config's freshly initialised model (pre-training from
scratch; the paper starts from a pre-trained model); no threshold on A (negative entries, where
training on i raised j's loss, are kept); ``steps`` defaults to a tenth of the run config's steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config, ConfigError
from ..train import checkpoint as ckpt
from ..train.evaluate import Evaluator
from . import PIPELINES, Artifact, Pipeline


@dataclass
class SkillItPipelineConfig(Config):
    steps: int | None = None  # per single-domain run; default: a tenth of the run's steps (>= 1)
    # passed on to the online run it prints
    eta: float = 0.2
    window: int = 3
    round_steps: int = 100

    def validate(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ConfigError("mix.skillit.steps must be at least 1")


@PIPELINES.register("skillit")
class SkillItPipeline(Pipeline):
    Config = SkillItPipelineConfig
    name = "skillit"
    signals = frozenset({"eval_loss"})
    reference = "Chen et al. 2023, Skill-it! (NeurIPS 2023, arXiv 2307.14430)"
    cost = "m short single-domain runs + (m + 1) evaluations for the graph"

    def run(self) -> Artifact:
        self.begin()
        names = self.data.train.names
        steps = self.config.steps or max(1, self.run_cfg.train.total_steps(self.data.train.context_length) // 10)
        init = np.asarray(self.stage("init_eval", lambda: self._eval(None)))
        after = []
        for name in names:
            mixing = {"method": "fixed", "params": {"weights": {name: 1.0}}}
            self.train_stage(f"graph-{name}", mixing, steps)
            run_dir = self.out / f"graph-{name}"
            after.append(self.stage(f"graph-{name}-eval", lambda d=run_dir: self._eval(d)))
        after = np.asarray(after, dtype=np.float64)
        graph = (init[None, :] - after) / init[None, :]
        c = self.config
        path = self.out / "graph.json"
        train_with = ["mixing.method=skillit", f"mixing.params.graph={path}",
                      f"mixing.params.eta={c.eta}", f"mixing.params.window={c.window}",
                      f"mixing.params.round_steps={c.round_steps}"]
        return self.finish("graph.json", None, train_with, domains=list(names),
                           graph=graph.tolist(), init_loss=init.tolist(), loss_after=after.tolist(),
                           steps=steps)

    def _eval(self, run_dir) -> dict:
        """Validation loss of every training domain: the initial model, or a run's final one."""
        cfg, data = self.run_cfg, self.data
        model = cfg.model.build(data.tokenizer.vocab_size, seed=cfg.train.seed)
        if run_dir is not None:
            model.load_state_dict(ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))["model"])
        evaluator = Evaluator(data.domain_eval, cfg.train.eval_batch_size, cfg.train.bf16)
        res = evaluator(model)
        if not np.all(np.isfinite(res.loss)):
            raise ConfigError("Skill-It needs validation tokens in every training domain")
        cost = {"eval_tokens": float(res.tokens.sum()),
                "forward_passes": float(np.ceil(len(evaluator.dom) / evaluator.batch_size))}
        return {"result": res.loss.tolist(), "cost": cost}
