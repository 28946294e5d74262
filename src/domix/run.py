"""A training run from one config: corpus -> tokenizer -> token store -> domains -> model -> train.

    cfg = RunConfig.from_yaml("configs/demo.yaml").merge(["train.steps=300"])
    result = train(cfg)                 # writes out_dir/{config.yaml, metrics.jsonl, summary.json, checkpoints/}
    result = train(cfg, resume=True)    # continues from the newest checkpoint, exactly

CPU-sized example: ``domix train --config configs/tiny.yaml --set train.steps=50``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from . import io
from .balance.base import Domains, build_method
from .balance.callback import MixingCallback
from .config import Config
from .corpus.builtin import open_corpus
from .corpus.store import Corpus
from .data.domains import DomainSet, resolve_domains
from .data.packed import PackedDomains, pack
from .data.records import RecordDomains, pack_records
from .data.sampler import MixtureSampler
from .data.token_store import TokenStore
from .tokenizer import INSTRUCTION_TEMPLATE, Tokenizer, TokenizerConfig
from .train.callbacks import Callback
from .train.evaluate import EvalResult, Evaluator
from .train.loop import TrainConfig, Trainer
from .train.models import ModelConfig, count_parameters, pretrained_source
from .types import Mixture


@dataclass
class DataConfig(Config):
    corpus: str = (
        "demo"  # a built-in name (demo, extended), a corpus folder, or a name in the cache
    )
    max_docs_per_domain: int | None = None  # built-in corpora only: a capped slice (tests)
    domains: str = "original"  # training domains: original, subdomain, regrouped:<name>
    eval_domains: str = (
        "original"  # evaluation is always reported on these (the protocol: original)
    )
    pack_seed: int = 0
    # prompt/response corpora: how a prompt is written before its response ({prompt} is replaced),
    # or "chat": the tokenizer's own chat template (a pretrained model's folder has one)
    template: str = INSTRUCTION_TEMPLATE


@dataclass
class MixingConfig(Config):
    method: str = "stratified"
    params: dict[str, Any] = field(default_factory=dict)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-signal collector settings


@dataclass
class RunConfig(Config):
    out_dir: str = "runs/run"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    mixing: MixingConfig = field(default_factory=MixingConfig)


@dataclass
class RunData:
    corpus: Corpus
    tokenizer: Tokenizer
    store: TokenStore
    domains: DomainSet
    train: PackedDomains | RecordDomains  # records: a prompt/response corpus (data/records.py)
    eval: PackedDomains | RecordDomains  # validation sequences of the evaluation domains (the reported losses)
    domain_eval: PackedDomains | RecordDomains  # validation sequences of the training domains (a method's signal)
    target: np.ndarray  # pbar: share of validation documents per training domain
    target_macro: np.ndarray  # pbar with every evaluation domain weighing the same (see _targets)

    def fingerprints(self) -> dict[str, str]:
        return {
            "corpus": self.corpus.fingerprint,
            "tokenizer": self.tokenizer.fingerprint,
            "domains": self.domains.fingerprint,
            "train": self.train.fingerprint,
        }


@dataclass
class RunResult:
    out_dir: Path
    eval: EvalResult | None
    mixture: Mixture
    summary: dict[str, Any]


def prepare_data(cfg: RunConfig) -> RunData:
    corpus = open_corpus(cfg.data.corpus, cfg.data.max_docs_per_domain, cfg.train.progress)
    tokenizer = tokenizer_config(cfg).build(corpus)
    store = TokenStore.build(corpus, tokenizer, progress=cfg.train.progress, template=cfg.data.template)
    pack_split = pack_records if corpus.records else pack  # records: one a row, loss on the response
    L = cfg.model.resolved_context_length()
    split = corpus.read(["split"]).column(0).to_numpy(zero_copy_only=False)
    domains = resolve_domains(corpus, cfg.data.domains)
    train_docs = np.bincount(
        domains.labels[(split == "train") & (domains.labels >= 0)], minlength=len(domains)
    )
    if (train_docs == 0).any():
        empty = [n for n, k in zip(domains.names, train_docs) if k == 0]
        print(
            f"warning: {len(empty)} of {len(domains)} '{cfg.data.domains}' domains have no training documents "
            f"and are left out of training: {', '.join(empty[:8])}{' ...' if len(empty) > 8 else ''}",
            flush=True,
        )
        domains = domains.keep(train_docs > 0)
    train_packed = pack_split(corpus, store, domains, "train", L, seed=cfg.data.pack_seed)
    cap = cfg.train.eval_tokens_per_domain
    domain_eval = pack_split(corpus, store, domains, "validation", L, seed=0, max_tokens_per_domain=cap)
    same = cfg.data.eval_domains == cfg.data.domains
    eval_domains = domains if same else resolve_domains(corpus, cfg.data.eval_domains)
    eval_packed = (
        domain_eval
        if eval_domains is domains
        else pack_split(corpus, store, eval_domains, "validation", L, seed=0, max_tokens_per_domain=cap)
    )
    target, target_macro = _targets(domains, eval_domains, split == "validation")
    return RunData(corpus, tokenizer, store, domains, train_packed, eval_packed, domain_eval, target,
                   target_macro)


def tokenizer_config(cfg: RunConfig) -> TokenizerConfig:
    """``tokenizer``, or the pretrained model's own tokenizer when ``model.pretrained`` is set and
    ``tokenizer.path`` is not (a BPE trained on the corpus would not match its embeddings)."""
    if not cfg.model.pretrained or cfg.tokenizer.path:
        return cfg.tokenizer
    folder, gguf = pretrained_source(cfg.model.pretrained, cfg.model.gguf_file)
    return TokenizerConfig(path=folder, gguf_file=gguf)


def _targets(train: DomainSet, evaluated: DomainSet, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pbar over the training domains, two ways: the share of validation documents in each (the R&B
    paper's), and the mean over evaluation domains of the share of that domain's validation
    documents in each (every evaluation domain weighs the same, as in the macro loss)."""
    m = len(train)
    uniform = np.full(m, 1.0 / m)
    docs = np.bincount(train.labels[val & (train.labels >= 0)], minlength=m).astype(np.float64)
    both = val & (train.labels >= 0) & (evaluated.labels >= 0)
    cross = np.zeros((len(evaluated), m))
    np.add.at(cross, (evaluated.labels[both], train.labels[both]), 1.0)
    rows = cross[cross.sum(1) > 0]
    macro = (rows / rows.sum(1, keepdims=True)).mean(0) if len(rows) else uniform
    return (docs / docs.sum() if docs.sum() > 0 else uniform), macro


def train(
    cfg: RunConfig,
    resume: bool = False,
    callbacks: list[Callback] | None = None,
    data: RunData | None = None,
) -> RunResult:
    torch.set_flush_denormal(True)
    data = data or prepare_data(cfg)
    rank, world = (
        (torch.distributed.get_rank(), torch.distributed.get_world_size())
        if torch.distributed.is_initialized()
        else (0, 1)
    )
    out_dir = Path(cfg.out_dir)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        io.write_text(out_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    model = cfg.model.build(data.tokenizer.vocab_size, seed=cfg.train.seed)
    domains = Domains(
        data.train.names, data.train.tokens_per_domain.astype(np.float64), data.target, data.target_macro
    )
    method = build_method(cfg.mixing.method, cfg.mixing.params)
    mixing = MixingCallback(method, domains, cfg.mixing.signals)
    sampler = MixtureSampler(
        data.train.num_sequences,
        np.full(len(domains), 1.0 / len(domains)),
        seed=cfg.train.seed,
        rank=rank,
        world_size=world,
    )
    evaluator = Evaluator(data.eval, cfg.train.eval_batch_size, cfg.train.bf16, rank, world)
    trainer = Trainer(
        cfg.train,
        model,
        data.train,
        sampler,
        out_dir,
        evaluator,
        [mixing, *(callbacks or [])],
        data.fingerprints(),
    )
    trainer.domain_evaluator = (
        evaluator
        if data.domain_eval is data.eval
        else Evaluator(data.domain_eval, cfg.train.eval_batch_size, cfg.train.bf16, rank, world)
    )
    result = trainer.fit(resume=resume)
    summary = {
        "method": cfg.mixing.method,
        "domains": cfg.data.domains,
        "steps": trainer.step,
        "tokens": trainer.step * cfg.train.batch_size * data.train.context_length * world,
        "parameters": count_parameters(model),
        "wall_s": round(trainer.wall_s, 3),
        "mixture": method.result().as_dict(),
        "extra_compute": dict(mixing.total_extra()),
        "epochs": dict(zip(data.train.names, sampler.epochs.round(4).tolist())),
        "eval": None
        if result is None
        else {
            "macro": result.macro,
            "token_average": result.token_average,
            "worst_domain": result.worst[0],
            "worst": result.worst[1],
            "per_domain": dict(zip(result.names, result.loss.tolist())),
        },
        "fingerprints": data.fingerprints(),
    }
    if data.train.meta.get("kind") == "records":  # what the context length cut
        summary["records"] = {split: {k: d.meta[k] for k in ("records", "truncated_prompts", "truncated_responses")}
                              for split, d in (("train", data.train), ("validation", data.eval))}
    if rank == 0:
        io.write_json(out_dir / "summary.json", summary)
    return RunResult(out_dir, result, method.result(), summary)
