"""What a comparison writes: ``table.md``, ``results.json``, the figures, and ``report.html`` — one
self-contained page (figures embedded as data URIs, no scripts, no network) with the tables, the
contrasts, the figures and the exact configuration."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import yaml

from .. import __version__, io
from .grid import Comparison
from .plots import (
    copy_regroup_map,
    plot_curves,
    plot_dograph_rounds,
    plot_domain_curves,
    plot_gram,
    plot_mixture_grid,
    plot_rnb_rounds,
)
from .table import contrasts, cost_table, domain_table, group_results, quality_table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
.scroll { overflow-x: auto; margin: 0.5em 0 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.8em; }
.note { color: #666; font-size: 0.85em; }
"""


def summary_text(cmp: Comparison, cost: bool = True) -> str:
    """The tables and contrasts as printed at the end of a comparison."""
    groups = group_results(cmp.results)
    tables = [quality_table(groups), domain_table(groups)] + ([cost_table(groups)] if cost else [])
    lines = ["macro validation loss differences (paired by seed; negative = better):",
             *(f"  {line}" for line in contrasts(groups))]
    return "\n\n".join(t.text() for t in tables) + "\n\n" + "\n".join(lines) + grid_notes(cmp)


def grid_notes(cmp: Comparison) -> str:
    """The pieces of the grid not run yet (a grid stopped by --max-minutes), and the domain sets
    whose pieces were trained on different data (e.g. regrouped by another embedding), or nothing."""
    text = ""
    if cmp.missing:
        cells = ", ".join(f"{c.group} seed {c.seed}" for c in cmp.missing)
        text = f"\n\nnot run yet ({len(cmp.missing)} of {len(cmp.missing) + len(cmp.results)} pieces): {cells}"
    versions: dict[str, dict[str, list[str]]] = {}
    for r in cmp.results:
        key = json.dumps(r.summary.get("fingerprints", {}), sort_keys=True)
        versions.setdefault(r.cell.layer, {}).setdefault(key, []).append(f"{r.cell.group} seed {r.cell.seed}")
    for layer, pieces in versions.items():
        if len(pieces) > 1:
            groups = "; ".join(f"[{', '.join(p)}]" for p in pieces.values())
            text += (f"\n\nmixed data: the {layer} pieces were trained on {len(pieces)} different versions of "
                     f"their data (fingerprints differ), so they do not compare like for like: {groups}")
    return text


def write_outputs(cmp: Comparison) -> dict[str, Path]:
    """Tables, figures and the report into ``cmp.out_dir``; returns the files by kind."""
    out = cmp.out_dir
    groups = group_results(cmp.results)
    tables = [quality_table(groups), domain_table(groups), cost_table(groups)]
    lines = contrasts(groups)
    io.write_text(out / "compare.yaml", yaml.safe_dump(cmp.config.to_dict(), sort_keys=False))
    io.write_text(out / "table.md", "\n\n".join(t.markdown() for t in tables)
                  + ("\n\n" + "\n".join(f"- {line}" for line in lines) if lines else "") + grid_notes(cmp) + "\n")
    io.write_json(out / "results.json", {
        "config": cmp.config.to_dict(),
        "runs": [{"method": r.cell.method, "domains": r.cell.layer, "seed": r.cell.seed,
                  "out_dir": str(r.out_dir), "summary": r.summary, "curve": r.curve()} for r in cmp.results],
    })
    figures = {
        "loss_curves": plot_curves(cmp, out / "loss_curves.png"),
        "domain_curves": plot_domain_curves(cmp, out / "loss_curves_by_domain.png"),
        "mixtures": plot_mixture_grid(cmp, out / "mixtures.png"),
        "rnb_rounds": plot_rnb_rounds(cmp, out / "rnb_rounds.png"),
        "gram": plot_gram(cmp, out / "rnb_gram.png"),
        "dograph_rounds": plot_dograph_rounds(cmp, out / "dograph_rounds.png"),
        "regroup_map": copy_regroup_map(cmp, out / "regroup_map.png"),
    }
    files = {"config": out / "compare.yaml", "table": out / "table.md", "results": out / "results.json",
             **{k: p for k, p in figures.items() if p is not None}}
    io.write_text(out / "report.html", render_html(cmp, tables, lines, files))
    files["report"] = out / "report.html"
    return files


CAPTIONS = {
    "loss_curves": "Macro validation loss on the original domains over training: mean over seeds, "
                   "band between the best and the worst seed.",
    "domain_curves": "Validation loss of each original domain over training (first seed).",
    "mixtures": "Domain weights over training (stacked), first seed. Static methods are flat.",
    "rnb_rounds": "R&B, first seed: the weights each round set (left), each domain's squared mean "
                  "LM-head gradient norm that round (middle, log), and the L1 change of the weights "
                  "from the previous round (right).",
    "gram": "R&B's domain-gradient Gram matrix of the last round (LM-head gradients) and its cosines.",
    "dograph_rounds": "DoGraph, first seed, by model-centric domain: the weights each refresh set (left), "
                      "where the utility alone would have moved them (middle: no graph, no bounds), and the "
                      "L1 change of the weights (right).",
    "regroup_map": "The regrouped domains: PCA of the MiniLM embeddings of a sample, coloured by cluster.",
}


def render_html(cmp: Comparison, tables: list, lines: list[str], files: dict[str, Path]) -> str:
    esc = html.escape
    cfg = cmp.config
    figures = "".join(
        f"<figure id='fig-{k}'><img alt='{esc(k)}' src='data:image/png;base64,"
        f"{base64.b64encode(files[k].read_bytes()).decode()}'><figcaption>{esc(CAPTIONS[k])}</figcaption></figure>"
        for k in CAPTIONS if k in files)
    regroup = "" if cmp.regroup is None else (
        f"<p>Regrouped domains: <code>{esc(cmp.regroup.name)}</code>, k = {cmp.regroup.k}, NMI with the original "
        f"domains {cmp.regroup.meta['nmi']:.3f}, purity {cmp.regroup.meta['purity']:.3f} "
        f"(<code>{esc(str(cmp.regroup.path))}</code>).</p>")
    exact: dict[str, Any] = {"compare": cfg.to_dict(), "run_recipe": cmp.base.to_dict(), "runs": [
        {"method": r.cell.method, "domains": r.cell.layer, "seed": r.cell.seed, "out_dir": str(r.out_dir)}
        for r in cmp.results]}
    contrast = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>domix compare: {esc(cfg.corpus)}</title>
<style>{STYLE}</style></head><body>
<h1>domix compare: corpus '{esc(cfg.corpus)}'</h1>
<p>{len(cmp.results)} runs: seed{"s" if len(cfg.seeds) > 1 else ""} {", ".join(map(str, cfg.seeds))}, {cfg.tokens:,} training tokens
each, methods {esc(", ".join(cfg.methods))}, domain sets {esc(", ".join(cfg.domains))}. Every run is evaluated on
the original domains. domix {esc(__version__)}.</p>
{f'<p id="missing" class="note">{esc(notes.strip())}</p>' if (notes := grid_notes(cmp)) else ""}
{regroup}
<h2>Results</h2>
{"".join(t.html() for t in tables)}
<h2>Contrasts (paired by seed; negative = better)</h2>
<ul id="contrasts">{contrast or "<li>none of the contrasted pairs is in this grid</li>"}</ul>
<h2>Figures</h2>
{figures}
<h2>Exact configuration</h2>
<p>Rerun with <code>domix compare --config compare.yaml --out {esc(str(cmp.out_dir))}</code> (finished runs are read back).</p>
<pre id="config">{esc(yaml.safe_dump(exact, sort_keys=False))}</pre>
</body></html>
"""
