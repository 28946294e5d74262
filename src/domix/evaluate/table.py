"""Plain-text and Markdown tables of per-domain validation losses, one column per run."""

from __future__ import annotations

from ..train.evaluate import EvalResult


def loss_table(results: dict[str, EvalResult], markdown: bool = False) -> str:
    """Rows: each evaluation domain, then macro / token average / worst; columns: runs.
    The best value of each row is marked with '*'."""
    labels = list(results)
    names = list(next(iter(results.values())).names)
    rows: list[tuple[str, list[float]]] = [
        (n, [float(results[lab].loss[i]) for lab in labels]) for i, n in enumerate(names)
    ]
    rows += [
        ("macro avg", [results[lab].macro for lab in labels]),
        ("token avg", [results[lab].token_average for lab in labels]),
        ("worst", [results[lab].worst[1] for lab in labels]),
    ]

    def cells(vals: list[float]) -> list[str]:
        best = min(vals)
        return [f"{v:.4f}{'*' if v == best and len(vals) > 1 else ' '}" for v in vals]

    if markdown:
        out = ["| domain | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        out += [f"| {n} | " + " | ".join(c.strip() for c in cells(v)) + " |" for n, v in rows]
        return "\n".join(out)
    width = max(12, *(len(n) for n, _ in rows))
    colw = max(10, *(len(lab) for lab in labels)) + 1
    out = [
        "validation loss (nats/token), * = best".ljust(width),
        f"{'domain':<{width}}" + "".join(f"{lab:>{colw}}" for lab in labels),
    ]
    for i, (n, v) in enumerate(rows):
        if i == len(names):
            out.append("-" * (width + colw * len(labels)))
        out.append(f"{n:<{width}}" + "".join(f"{c:>{colw}}" for c in cells(v)))
    return "\n".join(out)
