"""``domix compare``: every method x domain set (original, regrouped) x seed at one token budget.

Every run of the grid is an ordinary ``train()`` run in its own folder under ``<out>/runs``, named
``<method>-<domains>-seed<s>-<hash>`` where the hash covers everything the run depends on (the
whole run config, the method's parameters), so a grid rerun with other settings never resumes the
wrong run. A finished run (its ``summary.json`` written for the same config) is read back, not
redone; an interrupted one resumes from its newest checkpoint. Runs go seed by seed, so a
comparison stopped early already holds every method at the first seeds. Each finished run (a
*piece*) is also appended to a results file (``compare/pieces.py``) that a later call skips, on any
machine, and ``max_minutes`` stops starting new pieces after that long.

A method that is also a multi-stage pipeline (``domix mix``: DoReMi, Skill-It, RegMix, data-mixing
laws) runs its stages first (in ``<run>.stages``, cached the same way) and its grid run is the final
run that trains on the pipeline's artifact (a static mixture, or Skill-It's graph); the stages'
compute and wall time are reported as the run's extra compute.

The domain sets: ``original`` (the corpus's own domains) and ``regrouped`` (R&B step 1: MiniLM
embeddings + k-means into ``k`` clusters, fitted once with seed 0 and shared by every seed; or the
clusters of ``clusters``, a file from ``domix regroup export``). Every
run is evaluated on the original domains, whatever it trained on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import io
from ..config import Config, ConfigError
from ..run import RunConfig, RunData, prepare_data, train
from ..train.callbacks import Callback
from ..train.metrics import read_metrics
from .pieces import ResultsFile, piece_record

DEFAULT_METHODS = ("stratified", "proportional", "rnb", "dograph", "odm", "ado", "aioli", "doge",
                   "doremi", "skillit")
LAYERS = ("original", "regrouped", "subdomain")  # subdomain: the corpus's own finer labels


@dataclass
class CompareConfig(Config):
    corpus: str = "demo"  # demo, extended, a corpus folder, or a name in the cache
    max_docs_per_domain: int | None = 2000  # built-in corpora: a capped slice (None: all)
    tokens: int = 393_216  # training tokens of every run (the equal budget)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # "name" runs on every domain set; "name@original" only on the sets named after '@'
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    domains: list[str] = field(default_factory=lambda: ["original", "regrouped"])  # or subdomain too
    k: int = 10  # regrouped domains
    params: dict[str, dict[str, Any]] = field(default_factory=lambda: {"rnb": {"round_steps": 32}})
    run: list[str] = field(default_factory=list)  # run config overrides for every run: model.preset=small
    # regroup config overrides, e.g. embed.precision=fp32 ("auto" picks bf16 / fp16 / fp32 by CPU);
    # the same settings on another CPU can still give other clusters: pin those with ``clusters``
    regroup: list[str] = field(default_factory=list)
    # or the clusters themselves, a file from `domix regroup export` (k must match; it replaces a
    # cached k<k> with other clusters): k-means is not bit-for-bit the same on every CPU, so a grid
    # carried across machines pins its clusters
    clusters: str | None = None

    def validate(self) -> None:
        for d in self.domains:
            if d not in LAYERS:
                raise ConfigError(f"compare.domains: '{d}' is not one of {list(LAYERS)}")
        if not self.seeds:
            raise ConfigError("compare.seeds: give at least one seed")
        if self.tokens <= 0:
            raise ConfigError("compare.tokens must be positive")
        for spec in self.methods:
            _, layers = parse_method(spec, self.domains)
            if not layers:
                raise ConfigError(f"compare.methods: '{spec}' runs on none of the domain sets {self.domains}")
        if self.regroup:
            self.regroup_config()  # a misspelt setting fails here, not after the first pieces

    def regroup_config(self) -> Any:
        """The regroup settings of the ``regrouped`` domain set: ``k`` clusters, seed 0, ``regroup``."""
        from ..regroup import RegroupConfig

        return RegroupConfig(k=self.k, seed=0).merge(self.regroup)

    def same_grid(self, compare: dict[str, Any]) -> bool:
        """Whether a results line's ``compare`` dict is this grid (lines written before a setting
        existed hold its default)."""
        return type(self).from_dict(compare).to_dict() == self.to_dict()

    def grid(self) -> list[Cell]:
        """The runs, seed by seed, then in the order of ``methods`` and ``domains``."""
        pairs = [(m, layer) for spec in self.methods for m, layers in [parse_method(spec, self.domains)]
                 for layer in layers]
        return [Cell(m, layer, s) for s in self.seeds for m, layer in pairs]


def parse_method(spec: str, domains: list[str]) -> tuple[str, list[str]]:
    name, _, only = spec.partition("@")
    if not only:
        return name, list(domains)
    wanted = only.split("+")
    for w in wanted:
        if w not in LAYERS:
            raise ConfigError(f"compare.methods: '{spec}': '{w}' is not one of {list(LAYERS)}")
    return name, [d for d in domains if d in wanted]


@dataclass(frozen=True)
class Cell:
    method: str
    layer: str
    seed: int

    @property
    def group(self) -> str:
        return f"{self.method} / {self.layer}"


@dataclass
class CellResult:
    cell: Cell
    out_dir: Path
    summary: dict[str, Any]
    trained: bool = False  # False: read back from an earlier finished run, or from the results file
    record: dict[str, Any] | None = None  # its line in the results file

    def curve(self) -> list[tuple[int, float]]:
        """(step, macro validation loss) at every evaluation."""
        if not (self.out_dir / "metrics.jsonl").exists() and self.record is not None:
            return [(s, v) for s, v in self.record["curve"]]  # a piece run elsewhere: its line only
        rows = read_metrics(self.out_dir / "metrics.jsonl", "eval")
        return [(r["step"], r["loss/val_macro"]) for r in rows if r.get("loss/val_macro") is not None]


@dataclass
class Comparison:
    config: CompareConfig
    out_dir: Path
    results: list[CellResult]
    regroup: Any  # the RegroupResult, or None without regrouped runs
    base: RunConfig  # the recipe every run shares (seed, domains and method set per run)
    missing: list[Cell] = field(default_factory=list)  # pieces not run yet (stopped by max_minutes)


def base_config(corpus: str = "demo", tokens: int = 393_216, max_docs_per_domain: int | None = 2000,
                overrides: list[str] | tuple[str, ...] = (), progress: bool = True) -> RunConfig:
    """The shared run recipe: the tiny GPT-2 (2 layers, d 128, context 128), batch 16, AdamW at 2e-3
    with 30 warm-up steps and cosine decay, evaluation on the original domains every 32 steps."""
    return RunConfig.from_dict({
        "data": {"corpus": corpus, "max_docs_per_domain": max_docs_per_domain, "eval_domains": "original"},
        "model": {"preset": "tiny"},
        "train": {"tokens": tokens, "batch_size": 16, "lr": 2e-3, "warmup_steps": 30, "seed": 0,
                  "eval_every": 32, "eval_tokens_per_domain": 8192, "log_every": 16, "checkpoint_every": 96,
                  "progress": progress},
    }).merge(list(overrides))


def run_compare(cfg: CompareConfig, out_dir: str | Path, progress: bool = True,
                callbacks: list[Callback] | None = None, results: str | Path | None = None,
                max_minutes: float | None = None, only: list[str] | None = None) -> Comparison:
    """Run (or finish) the grid; returns the result of every piece done so far. Each finished piece
    is appended to the results file (``results``, default ``<out_dir>/results.jsonl``) and skipped
    by a later call; with ``max_minutes`` no new piece starts after that long, and ``only`` (method
    specs as in ``methods``: ``doremi``, ``rnb@regrouped``, ``*@original``) trains only those pieces
    now (the pieces not run are listed in ``Comparison.missing``). Tables, plots and the report are made from the returned
    ``Comparison`` (``domix.compare.report.write_outputs``)."""
    from ..balance.base import METHODS
    from ..pipelines import PIPELINES

    for name in dict.fromkeys(c.method for c in cfg.grid()):  # unknown names fail before any work
        PIPELINES.get(name) if name in PIPELINES else METHODS.get(name)
    out_dir = Path(out_dir)
    cells = cfg.grid()
    print(f"== {len(cells)} runs: {len(cfg.seeds)} seeds x {len(cells) // len(cfg.seeds)} method / domain "
          f"pairs, {cfg.tokens:,} tokens each; corpus '{cfg.corpus}'", flush=True)
    wanted = selected(cells, only, cfg.domains)  # before the slow preparation: a typo fails now
    base, data, rg = prepare_grid(cfg, progress)
    book = ResultsFile(results or out_dir / "results.jsonl")
    done: list[CellResult] = []
    todo: list[tuple[Cell, str, RunConfig]] = []  # the wanted pieces the results file lacks, in grid order
    for cell in cells:
        piece, run_cfg = cell_config(cell, base, data[cell.layer], cfg.params.get(cell.method, {}))
        record = book.find(piece, data[cell.layer].fingerprints())
        if record is not None:
            done.append(CellResult(cell, out_dir / "runs" / piece, record["summary"], record=record))
        elif cell in wanted:
            todo.append((cell, piece, run_cfg))
    print(f"== {len(done)} of {len(cells)} pieces in {book.path} already; {len(todo)} to train now", flush=True)
    t0, trained = time.perf_counter(), 0
    for j, (cell, piece, run_cfg) in enumerate(todo):
        if max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes:
            print(f"== stopping after {max_minutes:g} min: {len(done)} of {len(cells)} pieces done, in {book.path}; "
                  "the same command continues with the next", flush=True)
            break
        print(f"== [{cells.index(cell) + 1}/{len(cells)}] {cell.group}, seed {cell.seed}: "
              f"{len(data[cell.layer].train.names)} training domains", flush=True)
        params = cfg.params.get(cell.method, {})
        res = run_cell(cell, piece, run_cfg, data[cell.layer], out_dir / "runs", params, callbacks)
        res.record = piece_record(piece, cell, res.out_dir, res.summary, cfg.to_dict())
        book.append(res.record)
        trained += res.trained
        if trained:
            left = (time.perf_counter() - t0) / trained * (len(todo) - j - 1)
            print(f"   macro val loss {res.summary['eval']['macro']:.4f}; ~{left / 60:.0f} min left "
                  f"(estimate from this session's runs)", flush=True)
        done.append(res)
    done.sort(key=lambda r: cells.index(r.cell))
    finished = {r.cell for r in done}
    return Comparison(cfg, out_dir, done, rg, base, [c for c in cells if c not in finished])


def selected(cells: list[Cell], only: list[str] | None, domains: list[str]) -> set[Cell]:
    """The cells ``only`` names (all without it); ``*`` stands for every method. A spec naming no
    cell of the grid is an error, so a typo does not silently run nothing."""
    if not only:
        return set(cells)
    chosen: set[Cell] = set()
    for spec in only:
        name, layers = parse_method(spec, domains)
        hit = {c for c in cells if name in ("*", c.method) and c.layer in layers}
        if not hit:
            raise ConfigError(f"--only '{spec}': no piece of this grid matches it")
        chosen |= hit
    return chosen


def load_comparison(results: str | Path, out_dir: str | Path) -> Comparison:
    """The comparison a results file holds, without running or reading any run folder: the grid of
    its last line's config, its pieces that belong to that grid (the last line of each cell), and the
    cells it lacks as ``missing``. Figures that need a run folder (per-domain curves, R&B's rounds)
    are left out for pieces whose folder is not under ``out_dir/runs``."""
    book = ResultsFile(results)
    if not book.records:
        raise ValueError(f"{book.path}: no finished pieces in it")
    cfg = CompareConfig.from_dict(book.records[-1]["compare"])
    latest = {(r["method"], r["domains"], r["seed"]): r for r in book.records if cfg.same_grid(r["compare"])}
    out_dir = Path(out_dir)
    done = [CellResult(c, out_dir / "runs" / rec["piece"], rec["summary"], record=rec)
            for c in cfg.grid() if (rec := latest.get((c.method, c.layer, c.seed))) is not None]
    got = {r.cell for r in done}
    base = base_config(cfg.corpus, cfg.tokens, cfg.max_docs_per_domain, cfg.run, progress=False)
    return Comparison(cfg, out_dir, done, None, base, [c for c in cfg.grid() if c not in got])


def prepare_grid(cfg: CompareConfig, progress: bool = True) -> tuple[RunConfig, dict[str, RunData], Any]:
    """The shared run recipe, the prepared data of each domain set the grid uses, and the regroup
    result (None without regrouped runs)."""
    from ..regroup import regroup
    from ..regroup.transfer import import_clusters

    base = base_config(cfg.corpus, cfg.tokens, cfg.max_docs_per_domain, cfg.run, progress)
    data: dict[str, RunData] = {"original": prepare_data(base)}
    rg = None
    if any(c.layer == "regrouped" for c in cfg.grid()):
        how = f"the clusters of {cfg.clusters}" if cfg.clusters else "embeddings + k-means; cached"
        print(f"== regrouping into {cfg.k} semantic domains ({how})", flush=True)
        if cfg.clusters:
            rg = import_clusters(data["original"].corpus, cfg.clusters, replace=True)  # the grid's own
            if rg.k != cfg.k:
                raise ConfigError(f"compare.clusters: {cfg.clusters} holds {rg.k} clusters, compare.k is {cfg.k}")
        else:
            rg = regroup(data["original"].corpus, cfg.regroup_config(), progress=progress)
        print(f"   {rg.name}: NMI vs original domains {rg.meta['nmi']:.3f}, purity {rg.meta['purity']:.3f}",
              flush=True)
        data["regrouped"] = prepare_data(base.merge([f"data.domains=regrouped:{rg.name}"]))
    if any(c.layer == "subdomain" for c in cfg.grid()):
        data["subdomain"] = prepare_data(base.merge(["data.domains=subdomain"]))
    return base, data, rg


def run_cell(cell: Cell, name: str, cfg: RunConfig, data: RunData, root: Path, params: dict[str, Any],
             callbacks: list[Callback] | None = None) -> CellResult:
    """One grid run (``name``, ``cfg``: from ``cell_config``): read back when finished (same config,
    same data fingerprints), resumed when interrupted, trained otherwise (a run whose data changed is
    refused by ``train``'s resume check)."""
    from ..pipelines import PIPELINES, build_pipeline

    out = root / name
    if cell.method in PIPELINES:
        art = build_pipeline(cell.method, cfg, root / f"{name}.stages", params, data).run()
        cfg = cfg.merge(art.train_with)
    else:
        d = cfg.to_dict()
        d["mixing"] |= {"method": cell.method, "params": params}
        cfg = RunConfig.from_dict(d)
    cfg = cfg.merge([f"out_dir={out}"])
    summary = _finished(out, cfg)
    if summary is not None and summary.get("fingerprints") == data.fingerprints():
        return CellResult(cell, out, summary)
    return CellResult(cell, out, train(cfg, resume=True, data=data, callbacks=callbacks).summary, trained=True)


def cell_config(cell: Cell, base: RunConfig, data: RunData, params: dict[str, Any]) -> tuple[str, RunConfig]:
    """The piece's name (``<method>-<domains>-seed<s>-<hash of everything the run depends on>``) and
    its run config before any pipeline stage."""
    cfg = base.merge([f"train.seed={cell.seed}", f"data.domains={data.domains.spec}"])
    spec = {"run": _identity(cfg, records=data.corpus.records), "method": cell.method, "params": params}
    return f"{cell.method}-{cell.layer}-seed{cell.seed}-{io.fingerprint(json.dumps(spec, sort_keys=True))[:8]}", cfg


def _identity(cfg: RunConfig, records: bool = True) -> dict[str, Any]:
    """What the run's result depends on: its config less the output folder and progress bars, and
    less the prompt template where the corpus has no prompts (so adding that setting did not rename
    the pieces of results files written before it)."""
    d = cfg.to_dict()
    d.pop("out_dir")
    d["train"].pop("progress")
    if not records:
        d["data"].pop("template")
    return d


def _finished(out: Path, cfg: RunConfig) -> dict[str, Any] | None:
    """The run's summary when it finished with exactly this config, else None."""
    try:
        same = _identity(RunConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text()))) == _identity(cfg)
        summary = io.read_json(out / "summary.json")
    except (OSError, ConfigError, yaml.YAMLError, ValueError):
        return None
    return summary if same and summary.get("eval") is not None else None
