"""domix regroup run | show | export | import | list: semantic domains (R&B step 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, fail

regroup_app = typer.Typer(
    no_args_is_help=True, help="Regroup a corpus into semantic domains (R&B step 1)."
)
app.add_typer(regroup_app, name="regroup")


@regroup_app.command("run")
def regroup_run(
    corpus: Annotated[str, typer.Argument(help="a built-in name, a corpus in the cache, a folder")],
    k: Annotated[str | None, typer.Option(help="number of clusters, or 'auto' (a sweep)")] = None,
    name: Annotated[str | None, typer.Option(help="artifact name (default k<k>)")] = None,
    engine: Annotated[str | None, typer.Option(help="local (streaming, resumable) or ray")] = None,
    embedder: Annotated[
        str | None, typer.Option(help="sentence-transformers (default), onnx (the same model in ONNX Runtime) or hashing")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="sentence-transformers model folder or cached name")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="truncate documents to this")] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="auto (bf16 with AMX, fp16 with AVX512-FP16), fp32, bf16, fp16"),
    ] = None,
    clusterer: Annotated[str | None, typer.Option(help="auto, faiss or sklearn")] = None,
    k_select: Annotated[
        str | None, typer.Option(help="with --k auto: silhouette or proxy (short training runs)")
    ] = None,
    k_min: int | None = None,
    k_max: int | None = None,
    k_step: int | None = None,
    seed: int | None = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="a RegroupConfig YAML")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="any RegroupConfig field: cluster.n_init=5 (repeatable)"),
    ] = None,
) -> None:
    """Embed, cluster and assign every document; write the regrouped:<name> domain layer.

    Example (CPU, ~20 s for a 600-document slice): domix corpus build demo --max-docs-per-domain 120 && domix regroup run demo-cap120 --k 5
    Full demo corpus (~7 min, embedding dominates): domix regroup run demo --k auto --k-min 4 --k-max 24
    Then train on it:   domix train -c configs/tiny.yaml --set data.domains=regrouped:k5
    """
    from ..config import ConfigError
    from ..corpus import CorpusError
    from ..regroup import EmbedError, RegroupConfig, regroup

    flags = {
        "k": k,
        "engine": engine,
        "embed.name": embedder,
        "embed.model": model,
        "embed.max_tokens": max_tokens,
        "embed.precision": precision,
        "cluster.clusterer": clusterer,
        "choose_k.method": k_select,
        "choose_k.k_min": k_min,
        "choose_k.k_max": k_max,
        "choose_k.k_step": k_step,
        "seed": seed,
    }
    dotlist = [f"{key}={v}" for key, v in flags.items() if v is not None]
    try:
        cfg = RegroupConfig.from_yaml(config) if config else RegroupConfig()
        cfg = cfg.merge([*dotlist, *(overrides or [])])
        res = regroup(corpus, cfg, name=name)
    except (ConfigError, CorpusError, EmbedError, ImportError) as e:
        fail(e)
    _print_regroup(res.meta, res.report)
    typer.echo(f"\nwrote {res.path}/  (report.md, report.json, map.png, assignment.parquet)")
    typer.echo(f"train on it: --set data.domains={res.spec}")


@regroup_app.command("show")
def regroup_show(
    corpus: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
    name: Annotated[str, typer.Argument(help="the regrouped domains' name (see regroup list)")],
) -> None:
    """Print the cluster report of regrouped domains (report.md) and where its files are.

    Example: domix regroup show demo k8
    """
    from ..corpus import Corpus, CorpusError
    from ..data.cluster_store import artifact_dir, load_meta

    try:
        c = Corpus.open(corpus)
        load_meta(c, name)
    except CorpusError as e:
        fail(e)
    out = artifact_dir(c, name)
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    typer.echo(f"files in {out}/")


@regroup_app.command("export")
def regroup_export(
    corpus: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
    name: Annotated[str, typer.Argument(help="the regrouped domains' name (see regroup list)")],
    path: Annotated[Path, typer.Argument(help="the file to write (gzip'd JSON, e.g. k10.clusters.json.gz)")],
) -> None:
    """Write the clusters of regrouped domains to a small file, for `regroup import` elsewhere.

    k-means is not bit-for-bit the same on every CPU; a grid continued on another machine imports
    the clusters instead of re-clustering. Example: domix regroup export demo k8 k8.clusters.json.gz
    """
    from ..corpus import Corpus, CorpusError
    from ..regroup.transfer import export_clusters

    try:
        out = export_clusters(Corpus.open(corpus), name, path)
    except CorpusError as e:
        fail(e)
    typer.echo(f"wrote {out} ({out.stat().st_size:,} bytes)")


@regroup_app.command("import")
def regroup_import(
    corpus: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
    path: Annotated[Path, typer.Argument(help="a file written by `domix regroup export`")],
    name: Annotated[str | None, typer.Option(help="artifact name (default: the exported one)")] = None,
    replace: Annotated[bool, typer.Option(help="replace an artifact of that name with other clusters")] = False,
) -> None:
    """Make regrouped domains from an exported clusters file (the same corpus, any machine).

    Example: domix regroup import demo k8.clusters.json.gz  (then data.domains=regrouped:k8)
    """
    from ..corpus import Corpus, CorpusError
    from ..regroup.transfer import import_clusters

    try:
        art = import_clusters(Corpus.open(corpus), path, name, replace)
    except CorpusError as e:
        fail(e)
    typer.echo(f"regrouped:{art.name}  k={art.k}  in {art.path}")


@regroup_app.command("list")
def regroup_list(
    corpus: Annotated[str, typer.Argument(help="a corpus name in the cache or a corpus folder")],
) -> None:
    """List the regrouped domain sets made for a corpus, with k, purity and NMI.

    Example: domix regroup list demo
    """
    from ..corpus import Corpus, CorpusError
    from ..data.cluster_store import list_artifacts, load_meta

    try:
        c = Corpus.open(corpus)
        names = list_artifacts(c)
        metas = [load_meta(c, n) for n in names]
    except CorpusError as e:
        fail(e)
    if not names:
        typer.echo(f"no regrouped domains for {c.name} yet: domix regroup run {c.name} --k 8")
    nan = float("nan")
    for m in metas:  # an imported artifact holds what its file held
        emb = m.get("config", {}).get("embed", {}).get("name", "-")
        src = f"  imported from {m['imported_from']}" if m.get("imported_from") else ""
        typer.echo(
            f"regrouped:{m['name']:<20} k={m['k']:<4} purity {m.get('purity', nan):.3f}  NMI {m.get('nmi', nan):.3f}"
            f"  embedder {emb}{src}"
        )


def _print_regroup(meta: dict, report: dict) -> None:
    unit = report["size_unit"]
    sel = meta.get("k_selection")
    if sel:
        curve = "  ".join(f"{r['k']}:{r[sel['key']]:.3f}" for r in sel["curve"])
        typer.echo(f"k by {sel['method']} ({sel['key']}): {curve}  -> k={sel['best']}")
    typer.echo(
        f"regrouped:{meta['name']}  k={meta['k']}  purity {meta['purity']:.3f}  NMI {meta['nmi']:.3f}"
        f"  (vs original domains, training documents)"
    )
    typer.echo(f"  {'cluster':<8}{'train docs':>11}{unit:>12}{'pbar':>8}  top domain    top terms")
    for c in report["clusters"]:
        top = f"{c['top_domain']} {c['top_domain_share']:.0%}" if c["top_domain"] else "-"
        typer.echo(
            f"  {c['name']:<8}{c['train_docs']:>11,}{c[unit]:>12,}{c['pbar']:>8.3f}  {top:<13} "
            + ", ".join(c["top_terms"][:5])
        )
