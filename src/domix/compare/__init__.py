"""Equal-budget comparisons of mixing methods: the grid (``grid.py``), its tables (``table.py``),
figures (``plots.py``) and the self-contained HTML report (``report.py``).

    cmp = run_compare(CompareConfig(methods=["stratified", "rnb"], seeds=[0, 1, 2]), "runs/compare")
    files = write_outputs(cmp)      # table.md, results.json, *.png, report.html
    cmp = load_comparison("benchmarks/results/compare-demo.jsonl", "runs/report")   # from the pieces file alone
"""

from .grid import CompareConfig, Comparison, base_config, load_comparison, run_compare
from .report import summary_text, write_outputs

__all__ = ["CompareConfig", "Comparison", "base_config", "load_comparison", "run_compare", "summary_text",
           "write_outputs"]
