"""Multi-stage mixing methods: a sequence of ordinary domix training runs ending in an artifact.

    pipe = build_pipeline("regmix", RunConfig.from_yaml("configs/tiny.yaml"), "runs/regmix")
    artifact = pipe.run()     # artifact.path: mixture.json for `fixed` (or graph.json for Skill-It)

Each stage's result is cached in the pipeline folder (``stages/<name>.json``, written atomically
when the stage finishes), so rerunning the same command skips finished stages; a training stage
that was interrupted continues from its own checkpoint (``train(..., resume=True)``). The folder
remembers the run config and parameters it was made with and refuses different ones.

Every stage's compute is added up (``extra``: runs, train tokens, forward and backward passes of
batches, evaluation tokens) and written into the artifact as ``extra_compute``; the run that uses
the artifact reports it in its own ``extra_compute`` (``MixingMethod.extra``).

A pipeline is one file in this package with ``@PIPELINES.register(name)``: ``domix mix <name>``
finds it without any other edit.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import io
from ..config import Config, ConfigError
from ..registry import Registry
from ..run import RunConfig, RunData, prepare_data, train
from ..types import Mixture


class PipelineError(RuntimeError):
    pass


@dataclass
class Artifact:
    path: Path  # the JSON a later run reads
    mixture: Mixture | None  # the static mixture (None for a Skill-It graph)
    extra: dict[str, float]  # compute the stages used
    train_with: list[str] = field(default_factory=list)  # --set overrides that train on it


class Pipeline:
    Config: ClassVar[type[Config]] = Config
    signals: ClassVar[frozenset[str]] = frozenset()  # what its stages read, for `domix methods`
    reference: ClassVar[str] = ""
    cost: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __init__(self, run_cfg: RunConfig, out: str | Path, config: Config | None = None,
                 data: RunData | None = None) -> None:
        self.run_cfg = run_cfg
        self.out = Path(out)
        self.config = config if config is not None else self.Config()
        self.extra: Counter[str] = Counter()
        self._data = data  # prepared from run_cfg on first use when not given

    def run(self) -> Artifact:
        raise NotImplementedError

    # -- stages -----------------------------------------------------------------------------------

    @property
    def data(self) -> RunData:
        if self._data is None:
            self._data = prepare_data(self.run_cfg)
        return self._data

    def begin(self) -> None:
        """Create the folder, or check that it was made with this config (refuse a mismatch)."""
        run = self.run_cfg.to_dict()
        run.pop("out_dir")
        run["train"].pop("progress")
        want = {"method": self.name, "params": self.config.to_dict(), "run": run}
        path = self.out / "pipeline.json"
        if path.exists():
            have = io.read_json(path)
            if have != json.loads(json.dumps(want)):  # as it reads back from JSON
                raise PipelineError(
                    f"{self.out} holds a '{have.get('method')}' pipeline made with a different run "
                    "config or parameters; use a new --out (or delete the folder)"
                )
        else:
            io.write_json(path, want)

    def stage(self, name: str, fn) -> dict[str, Any]:
        """Run ``fn() -> {"result": ..., "cost": {...}}`` once; later calls read the marker back."""
        marker = self.out / "stages" / f"{name}.json"
        if marker.exists():
            rec = io.read_json(marker)
            print(f"[{self.name}] stage {name}: done earlier, reusing {marker}", flush=True)
        else:
            print(f"[{self.name}] stage {name}: running", flush=True)
            rec = fn()
            io.write_json(marker, rec)
        self.extra.update(rec.get("cost", {}))
        return rec["result"]

    def stage_config(self, name: str, mixing: dict[str, Any], steps: int | None = None,
                     seed: int | None = None) -> RunConfig:
        cfg = self.run_cfg.to_dict()
        cfg["out_dir"] = str(self.out / name)
        cfg["mixing"] = {"method": "stratified", "params": {}, "signals": {}, **mixing}
        if steps is not None:
            cfg["train"]["steps"], cfg["train"]["tokens"] = steps, None
        if seed is not None:
            cfg["train"]["seed"] = seed
        return type(self.run_cfg).from_dict(cfg)

    def train_stage(self, name: str, mixing: dict[str, Any], steps: int | None = None,
                    seed: int | None = None) -> dict[str, Any]:
        """One ordinary training run (resumable), cached as a stage; returns its summary."""
        def go() -> dict[str, Any]:
            cfg = self.stage_config(name, mixing, steps, seed)
            result = train(cfg, resume=True, data=self.data)
            return {"result": result.summary, "cost": self.run_cost(cfg, result.summary)}

        return self.stage(name, go)

    def run_cost(self, cfg: RunConfig, summary: dict[str, Any]) -> dict[str, float]:
        """Compute of one training run: its steps (one forward and backward each), its periodic
        evaluations and whatever its signals counted."""
        steps, every = summary["steps"], cfg.train.eval_every
        evals = steps // every + (steps % every != 0)
        ev = self.data.eval
        eval_seqs = int(ev.num_sequences.sum())
        cost = Counter({
            "runs": 1,
            "train_tokens": summary["tokens"],
            "forward_passes": steps + evals * math.ceil(eval_seqs / cfg.train.eval_batch_size),
            "backward_passes": steps,
            "eval_tokens": evals * eval_seqs * ev.context_length,
            "wall_s": summary.get("wall_s", 0.0),
        })
        cost.update(summary.get("extra_compute", {}))
        return dict(cost)

    def finish(self, filename: str, mixture: Mixture | None, train_with: list[str],
               **meta: Any) -> Artifact:
        path = self.out / filename
        extra = {k: float(v) for k, v in sorted(self.extra.items())}
        if mixture is not None:
            mixture.save(path, method=self.name, extra_compute=extra, **meta)
        else:
            io.write_json(path, {"method": self.name, "extra_compute": extra, **meta})
        return Artifact(path, mixture, extra, train_with)


PIPELINES: Registry[type[Pipeline]] = Registry("multi-stage method", package="domix.pipelines")


def build_pipeline(name: str, run_cfg: RunConfig, out: str | Path,
                   params: list[str] | dict[str, Any] | None = None, data: RunData | None = None) -> Pipeline:
    """``params``: a dotlist (``["runs=16"]``) or a mapping of the pipeline's Config fields;
    ``data``: ``prepare_data(run_cfg)`` when the caller already has it."""
    cls = PIPELINES.get(name)
    if isinstance(params, dict) or params is None:
        cfg = cls.Config.from_dict(params or {}, _path=f"mix.{name}")
    else:
        cfg = cls.Config().merge(params)
    return cls(run_cfg, out, cfg, data)


def dirichlet_mixtures(rng: np.random.Generator, prior: np.ndarray, n: int,
                       strengths: np.ndarray) -> np.ndarray:
    """``n`` mixtures drawn from Dirichlet(prior * s), s picked at random from ``strengths``."""
    s = rng.choice(strengths, size=n)
    alpha = np.maximum(prior[None, :] * s[:, None], 1e-6)
    g = rng.gamma(alpha)
    total = g.sum(1, keepdims=True)
    bad = total[:, 0] <= 0  # every gamma underflowed: fall back to the prior
    g[bad], total[bad] = prior, 1.0
    return g / total


def require_eval(summary: dict[str, Any], stage: str) -> dict[str, Any]:
    if summary.get("eval") is None:
        raise ConfigError(f"stage {stage} did not evaluate: set train.eval_every <= train.steps")
    return summary["eval"]
