"""``domix compare`` in pieces: a results file of one JSON line per finished run, skipped on rerun
(even where the run folders are gone), ``max_minutes``, and partial grids in the tables."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from domix.cli import app
from domix.compare import CompareConfig, load_comparison, run_compare, summary_text, write_outputs
from domix.compare.pieces import ResultsFile
from domix.train.callbacks import Callback

MICRO = ["model.preset=micro", "train.batch_size=4", "train.warmup_steps=2", "train.eval_every=4",
         "train.eval_tokens_per_domain=512", "train.log_every=2", "train.checkpoint_every=4", "train.eval_batch_size=8"]


class Count(Callback):
    """Counts the runs that train; raises KeyboardInterrupt in the ``stop_in``-th one."""

    name = "count"

    def __init__(self, stop_in=None):
        self.runs, self.stop_in = 0, stop_in

    def on_train_start(self, trainer):
        self.runs += 1
        if self.runs == self.stop_in:
            raise KeyboardInterrupt


def grid():
    return CompareConfig(corpus="demo", max_docs_per_domain=120, tokens=8 * 4 * 64, seeds=[0, 1],
                         methods=["stratified@original", "rnb@original"], domains=["original"],
                         params={"rnb": {"round_steps": 2}}, run=MICRO)


def test_a_grid_stopped_after_its_first_piece_continues_from_the_results_file(demo_corpus, tmp_path):
    results = tmp_path / "results" / "compare-micro.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_compare(grid(), tmp_path / "a", progress=False, results=results, callbacks=[Count(stop_in=2)])
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in lines] == [("stratified", 0)]
    first = lines[0]
    assert first["summary"]["eval"]["macro"] > 0 and first["curve"][-1][0] == 8
    assert first["measured"]["cores"] >= 1 and "cpu_flags" in first["measured"]
    assert set(first["fingerprints"]) == {"corpus", "tokenizer", "domains", "train"}

    partial = load_comparison(results, tmp_path / "partial")  # the report from the file alone
    assert len(partial.results) == 1 and len(partial.missing) == 3
    r = CliRunner().invoke(app, ["compare", "report", str(results), "--out", str(tmp_path / "partial")])
    assert r.exit_code == 0, r.output
    assert "not run yet (3 of 4 pieces)" in r.output and "stratified / original" in r.output
    assert (tmp_path / "partial" / "report.html").exists()

    shutil.rmtree(tmp_path / "a")  # another machine: only the committed results file is there
    count = Count()
    cmp = run_compare(grid(), tmp_path / "b", progress=False, results=results, callbacks=[count])
    assert count.runs == 3  # the first piece is not recomputed
    assert [(r.cell.method, r.cell.seed) for r in cmp.results] == [
        ("stratified", 0), ("rnb", 0), ("stratified", 1), ("rnb", 1)]
    assert cmp.results[0].summary == first["summary"] and not cmp.missing
    assert len(ResultsFile(results).records) == 4
    assert "not run yet" not in summary_text(cmp)
    files = write_outputs(cmp)  # the piece without a folder still has its curve in the tables
    assert "stratified / original" in files["table"].read_text()
    whole = load_comparison(results, tmp_path / "report")
    assert not whole.missing and [r.summary for r in whole.results] == [r.summary for r in cmp.results]


def test_max_minutes_stops_starting_pieces_and_the_tables_say_what_is_missing(demo_corpus, tmp_path):
    results = tmp_path / "results.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_compare(grid(), tmp_path / "a", progress=False, results=results, callbacks=[Count(stop_in=2)])
    count = Count()
    cmp = run_compare(grid(), tmp_path / "a", progress=False, results=results, callbacks=[count], max_minutes=0)
    assert count.runs == 0 and len(cmp.results) == 1
    assert [(c.method, c.seed) for c in cmp.missing] == [("rnb", 0), ("stratified", 1), ("rnb", 1)]
    text = summary_text(cmp)
    assert "not run yet (3 of 4 pieces): rnb / original seed 0, stratified / original seed 1" in text
    files = write_outputs(cmp)
    assert "not run yet (3 of 4 pieces)" in files["table"].read_text()
    assert 'id="missing"' in files["report"].read_text()


def test_a_stop_by_max_minutes_counts_every_recorded_piece(demo_corpus, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    run_compare(grid(), tmp_path / "a", progress=False, results=results, only=["rnb"])  # the grid's 2nd and 4th
    count = Count()
    cmp = run_compare(grid(), tmp_path / "a", progress=False, results=results, callbacks=[count], max_minutes=0)
    assert count.runs == 0 and [(r.cell.method, r.cell.seed) for r in cmp.results] == [("rnb", 0), ("rnb", 1)]
    assert [(c.method, c.seed) for c in cmp.missing] == [("stratified", 0), ("stratified", 1)]
    out = capsys.readouterr().out
    assert "2 of 4 pieces in" in out and "stopping after 0 min: 2 of 4 pieces done" in out


def test_results_file_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"piece": "a", "fingerprints": {}}\n{"piece": "b", "fing')  # killed mid-append
    book = ResultsFile(path)
    assert [r["piece"] for r in book.records] == ["a"]
    book.append({"piece": "c", "fingerprints": {}})
    assert [json.loads(x)["piece"] for x in path.read_text().splitlines()] == ["a", "c"]
    assert book.find("c", {}) and book.find("c", {"corpus": "x"}) is None
    path.write_text('{"piece": "a", "fingerprints": {}}\nnot json\n{"piece": "c", "fingerprints": {}}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl:2: not a JSON line"):
        ResultsFile(path)


def test_only_trains_the_named_pieces_and_a_typo_fails_before_any_work(demo_corpus, tmp_path):
    from domix.config import ConfigError

    results, count = tmp_path / "results.jsonl", Count()
    with pytest.raises(ConfigError, match="--only 'rnbx@original': no piece of this grid matches it"):
        run_compare(grid(), tmp_path / "a", progress=False, results=results, only=["rnbx@original"])
    cmp = run_compare(grid(), tmp_path / "a", progress=False, results=results, callbacks=[count], only=["rnb"])
    assert count.runs == 2 and {r.cell.method for r in cmp.results} == {"rnb"}
    assert [(c.method, c.seed) for c in cmp.missing] == [("stratified", 0), ("stratified", 1)]
    cmp = run_compare(grid(), tmp_path / "a", progress=False, results=results, callbacks=[count], only=["*@original"])
    assert count.runs == 4 and not cmp.missing  # the rnb pieces come from the results file


def test_a_grid_trains_on_pinned_clusters(demo_corpus, tmp_path):
    """compare.clusters: the regrouped domains are the exported file's clusters, not k-means here."""
    import gzip

    from domix.config import ConfigError
    from domix.data.cluster_store import load_clusters

    labels = [i % 3 for i in range(demo_corpus.num_docs)]
    doc = {"format": "domix-clusters/1", "corpus": demo_corpus.name, "corpus_fingerprint": demo_corpus.fingerprint,
           "name": "pinned3", "meta": {"cluster_names": ["c00", "c01", "c02"], "nmi": 0.0, "purity": 0.3},
           "report_md": "", "labels": labels}
    path = tmp_path / "pinned3.clusters.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(doc, f)
    cfg = grid().merge(["domains=[regrouped]", "methods=[stratified]", "seeds=[0]", f"clusters={path}", "k=4"])
    with pytest.raises(ConfigError, match="holds 3 clusters, compare.k is 4"):
        run_compare(cfg, tmp_path / "a", progress=False)
    cmp = run_compare(cfg.merge(["k=3"]), tmp_path / "a", progress=False)
    assert load_clusters(demo_corpus, "pinned3")[1].tolist() == labels
    assert cmp.regroup.name == "pinned3" and cmp.results[0].summary["mixture"].keys() == {"c00", "c01", "c02"}
