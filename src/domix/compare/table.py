"""The comparison's tables: runs grouped by method / domain set, mean +- spread over seeds.

- quality: macro, token-average and worst-domain validation loss (nats/token) and perplexity, and
  the paired difference in macro loss to stratified on the original domains (the reference: same
  seed, so seed noise shared by both runs cancels), with how many seeds the run beats it in;
- per domain: each original domain's validation loss;
- cost: steps to reach the reference's final macro loss (linear interpolation between evaluations;
  "k/n" when only k of n seeds reach it), wall time of the run (training, evaluation, checkpoints;
  pipeline stages separately), overhead = wall time / stratified's on the same domain set and seed,
  and the extra compute each method counted (runs, forward / backward passes, evaluation tokens).

Spread is the sample standard deviation over seeds (n - 1), shown as ``mean ± sd``.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .grid import CellResult

REFERENCE = "stratified / original"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""

    def text(self) -> str:
        cells = [self.columns, *self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
        out = [self.title, line(self.columns), "-" * (sum(widths) + 2 * (len(widths) - 1))]
        return "\n".join(out + [line(r) for r in self.rows] + ([self.note] if self.note else []))

    def markdown(self) -> str:
        out = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |", "|---" * len(self.columns) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out + ([f"\n{self.note}"] if self.note else []))

    def html(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        note = f"<p class='note'>{esc(self.note)}</p>" if self.note else ""
        return (f"<h3>{esc(self.title)}</h3><div class='scroll'><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table></div>{note}")


@dataclass
class Group:
    """The runs of one method on one domain set, one per seed."""

    label: str
    runs: dict[int, CellResult] = field(default_factory=dict)

    def values(self, key: str) -> list[float]:
        return [r.summary["eval"][key] for r in self.runs.values()]


def group_results(results: list[CellResult]) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for r in results:
        groups.setdefault(r.cell.group, Group(r.cell.group)).runs[r.cell.seed] = r
    return groups


def mean_sd(xs: list[float], digits: int = 4, signed: bool = False) -> str:
    if not xs:
        return "—"
    m = f"{float(np.mean(xs)):{'+' if signed else ''}.{digits}f}"
    return m if len(xs) == 1 else f"{m} ± {float(np.std(xs, ddof=1)):.{digits}f}"


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """First step at which the macro loss reaches ``target`` (linear between evaluations), or None."""
    prev = None
    for step, loss in curve:
        if loss <= target:
            if prev is None or prev[1] == loss:
                return float(step)
            (s0, l0) = prev
            return s0 + (step - s0) * (l0 - target) / (l0 - loss)
        prev = (step, loss)
    return None


def paired(groups: dict[str, Group], label: str, ref: str, fn) -> list[float]:
    """``fn(run, reference run)`` for every seed both groups have."""
    a, b = groups.get(label), groups.get(ref)
    if a is None or b is None:
        return []
    return [fn(a.runs[s], b.runs[s]) for s in a.runs if s in b.runs]


def quality_table(groups: dict[str, Group]) -> Table:
    rows = []
    for label, g in groups.items():
        worst_names = Counter(r.summary["eval"]["worst_domain"] for r in g.runs.values())
        diffs = paired(groups, label, REFERENCE, lambda a, b: a.summary["eval"]["macro"] - b.summary["eval"]["macro"])
        delta = "—" if label == REFERENCE or not diffs else (
            f"{mean_sd(diffs, signed=True)} ({sum(d < 0 for d in diffs)}/{len(diffs)} better)")
        rows.append([label, str(len(g.runs)), mean_sd(g.values("macro")), mean_sd(g.values("token_average")),
                     f"{mean_sd(g.values('worst'))} ({worst_names.most_common(1)[0][0]})",
                     mean_sd([math.exp(v) for v in g.values("macro")], 1),
                     mean_sd([math.exp(v) for v in g.values("token_average")], 1),
                     mean_sd([math.exp(v) for v in g.values("worst")], 1), delta])
    return Table("validation loss on the original domains (nats/token) and perplexity, mean ± sd over seeds",
                 ["method / domains", "seeds", "macro loss", "token-avg loss", "worst loss (domain)", "macro ppl",
                  "token-avg ppl", "worst ppl", f"Δ macro vs {REFERENCE} (paired)"], rows,
                 "perplexity = exp(loss) per seed; Δ < 0: better than the reference; "
                 "'k/n better': seeds in which the run's macro loss is lower than the reference's")


def domain_table(groups: dict[str, Group]) -> Table:
    names = list(next(iter(groups.values())).runs.values())[0].summary["eval"]["per_domain"]
    rows = [[label, *(mean_sd([r.summary["eval"]["per_domain"][n] for r in g.runs.values()]) for n in names)]
            for label, g in groups.items()]
    return Table("validation loss per original domain (nats/token), mean ± sd over seeds",
                 ["method / domains", *names], rows)


def cost_table(groups: dict[str, Group]) -> Table:
    rows = []
    for label, g in groups.items():
        runs = list(g.runs.values())
        reach: list[float | None] = paired(groups, label, REFERENCE, lambda a, b: steps_to_reach(
            a.curve(), b.summary["eval"]["macro"]))
        got = [x for x in reach if x is not None]
        steps = "—" if not reach else ("never" if not got else mean_sd(got, 0) + (
            f" ({len(got)}/{len(reach)})" if len(got) < len(reach) else ""))
        strat = f"stratified / {label.split(' / ')[1]}"
        over = paired(groups, label, strat, lambda a, b: a.summary.get("wall_s", math.nan) / b.summary.get("wall_s", math.nan))
        extra = Counter()
        for r in runs:
            extra.update(r.summary.get("extra_compute", {}))
        stage_s = extra.pop("wall_s", 0.0) / len(runs)
        rows.append([label, str(runs[0].summary["steps"]), steps,
                     mean_sd([r.summary.get("wall_s", math.nan) for r in runs], 1),
                     "—" if label == strat or not over else mean_sd(over, 3),
                     f"{stage_s:.0f}" if stage_s else "—", extra_text({k: v / len(runs) for k, v in extra.items()})])
    return Table("cost: steps to reach the reference's final macro loss, wall time, extra compute",
                 ["method / domains", "steps", f"steps to {REFERENCE}'s final loss", "wall s",
                  "overhead vs stratified (same domains)", "pipeline stages s", "extra compute (mean per run)"], rows,
                 "wall time: the run's own training, evaluation and checkpoints (not data preparation); "
                 "overhead = wall / stratified's wall on the same domain set and seed (a shared, noisy machine: "
                 "read differences under ~5% as noise)")


_SHORT = {"runs": "runs", "train_tokens": "train tok", "forward_passes": "fwd", "backward_passes": "bwd", "forward_tokens": "fwd tok",
          "eval_tokens": "eval tok"}


def extra_text(extra: dict[str, float]) -> str:
    parts = [f"{_SHORT.get(k, k)} {si(v)}" for k, v in sorted(extra.items(), key=lambda kv: list(_SHORT).index(kv[0])
             if kv[0] in _SHORT else len(_SHORT)) if v]
    return ", ".join(parts) or "none"


def si(v: float) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def contrasts(groups: dict[str, Group]) -> list[str]:
    """The questions a comparison answers, as paired macro-loss differences (negative = better)."""
    pairs = [("Regroup alone (stratified: regrouped - original)", "stratified / regrouped", "stratified / original"),
             ("Balance on original domains (rnb - stratified)", "rnb / original", "stratified / original"),
             ("Balance on regrouped domains (rnb - stratified)", "rnb / regrouped", "stratified / regrouped"),
             ("R&B (rnb / regrouped) vs stratified / original", "rnb / regrouped", "stratified / original"),
             ("DoGraph vs stratified on the same domains (original)", "dograph / original", "stratified / original"),
             ("DoGraph vs stratified on the same domains (regrouped)", "dograph / regrouped", "stratified / regrouped")]
    lines = []
    for text, a, b in pairs:
        diffs = paired(groups, a, b, lambda x, y: x.summary["eval"]["macro"] - y.summary["eval"]["macro"])
        if diffs:
            lines.append(f"{text}: {mean_sd(diffs, signed=True)} ({sum(d < 0 for d in diffs)}/{len(diffs)} seeds better)")
    return lines
