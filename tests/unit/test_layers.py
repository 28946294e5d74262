"""The package reads bottom-up: no module imports a higher layer, and no two modules import each other.

The layers are README.md's Layout, in order. Every import counts: one inside a function (a lazy
import is still a dependency) and one under ``if TYPE_CHECKING`` (a reader still follows it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import domix

ROOT = Path(domix.__file__).parent
LAYERS = [
    {"config", "registry", "types", "io", "faults"},
    {"corpus"},
    {"tokenizer"},
    {"data"},
    {"train"},
    {"balance"},
    {"run", "launch"},
    {"pipelines", "hf"},
    {"evaluate"},
    {"regroup"},
    {"compare"},
    {"demo", "cli"},
]
# Building a built-in corpus also trains the default tokenizer and tokenizes it once, so its
# manifest carries token counts (corpus/builtin.py, lazily): the one import of a higher layer.
ALLOWED_UP = {("domix.corpus.builtin", "domix.data.token_store"), ("domix.corpus.builtin", "domix.tokenizer")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def imports(path: Path) -> list[str]:
    """The domix modules the file imports."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names]
            found = [n for n in names if is_module(n)] or [target]
        elif isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        else:
            continue
        out += [t for t in found if t.split(".")[0] == "domix"]
    return out


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if top in names), -1)


GRAPH = {module_name(p): imports(p) for p in sorted(ROOT.rglob("*.py"))}


def test_every_module_has_a_layer():
    assert not [m for m in GRAPH if m != "domix" and layer(m) < 0]


def test_no_module_imports_a_higher_layer():
    up = [
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if layer(t) > layer(m) and (m, t) not in ALLOWED_UP
    ]
    assert not up


def test_no_import_circles():
    edges = {m: sorted({t for t in ts if t in GRAPH and t != m}) for m, ts in GRAPH.items()}
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    circles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in edges[m]:
            if state.get(t) == 1:
                circles.append(" -> ".join(stack[stack.index(t):] + [m, t]) if t in stack else f"{m} -> {t}")
            elif t not in state:
                visit(t, stack + [m])
        state[m] = 2

    for m in edges:
        if m not in state:
            visit(m, [])
    assert not circles
