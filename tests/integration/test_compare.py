"""``domix compare`` end to end on the capped demo corpus with the micro model: the grid, resuming an
interrupted comparison, reading finished runs back, the tables, and the HTML report in Chromium."""

import os
import re
import shutil

import pytest

from domix.compare import CompareConfig, run_compare, write_outputs
from domix.compare.table import cost_table, group_results, quality_table
from domix.train.callbacks import Callback

MICRO = ["model.preset=micro", "train.batch_size=4", "train.warmup_steps=2", "train.eval_every=4",
         "train.eval_tokens_per_domain=512", "train.log_every=2", "train.checkpoint_every=2", "train.eval_batch_size=8"]
STEPS = 8


class InterruptRun(Callback):
    """Raises KeyboardInterrupt at ``at`` steps into the ``nth`` run it sees (the same object is
    passed to every run of the grid)."""

    name = "interrupt_run"

    def __init__(self, nth, at):
        self.nth, self.at, self.runs = nth, at, 0

    def on_train_start(self, trainer):
        self.runs += 1

    def on_step_start(self, trainer, step):
        if self.runs == self.nth and step == self.at:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, demo_corpus):
    out = tmp_path_factory.mktemp("compare")
    cfg = CompareConfig(corpus="demo", max_docs_per_domain=120, tokens=STEPS * 4 * 64, seeds=[0, 1], k=4,
                        methods=["stratified", "proportional@original", "rnb", "doremi@original"],
                        params={"rnb": {"round_steps": 2}}, run=MICRO, regroup=["embed.precision=fp32"])
    with pytest.raises(KeyboardInterrupt):
        run_compare(cfg, out, progress=False, callbacks=[InterruptRun(nth=2, at=5)])
    finished_first = {p.name for p in (out / "runs").iterdir() if (p / "summary.json").exists()}
    resumed = run_compare(cfg, out, progress=False)
    again = run_compare(cfg, out, progress=False)
    return {"cfg": cfg, "out": out, "first": finished_first, "cmp": resumed, "again": again,
            "files": write_outputs(again)}


def test_grid_runs_every_method_domain_set_and_seed(comparison):
    cmp = comparison["cmp"]
    cells = [(r.cell.method, r.cell.layer, r.cell.seed) for r in cmp.results]
    pairs = [("stratified", "original"), ("stratified", "regrouped"), ("proportional", "original"),
             ("rnb", "original"), ("rnb", "regrouped"), ("doremi", "original")]
    assert cells == [(m, d, s) for s in (0, 1) for m, d in pairs]
    for r in cmp.results:
        assert r.summary["steps"] == STEPS and r.summary["tokens"] == STEPS * 4 * 64  # the equal budget
        assert r.summary["wall_s"] > 0
        assert list(r.summary["eval"]["per_domain"]) == ["code", "dialogue", "drama", "math", "news"]
    by = {(r.cell.method, r.cell.layer, r.cell.seed): r for r in cmp.results}
    assert len(by["rnb", "regrouped", 0].summary["mixture"]) == 4  # trained on the k = 4 regrouped domains
    assert cmp.regroup.meta["config"]["embed"]["precision"] == "fp32"  # the grid's pinned regroup setting
    # seeds give different runs; the pipeline's stages are counted as extra compute
    assert by["stratified", "original", 0].summary["eval"] != by["stratified", "original", 1].summary["eval"]
    assert by["doremi", "original", 0].summary["extra_compute"]["runs"] == 2


def test_interrupted_comparison_resumes_and_finished_runs_are_read_back(comparison):
    cmp, again = comparison["cmp"], comparison["again"]
    # the first run finished before the interruption; the second was stopped at step 5 and resumed
    assert len(comparison["first"]) == 1 and cmp.results[0].out_dir.name in comparison["first"]
    assert not cmp.results[0].trained and all(r.trained for r in cmp.results[1:])
    assert (cmp.results[1].out_dir / "checkpoints").exists()
    # a third call trains nothing and reports the same numbers
    assert not any(r.trained for r in again.results)
    assert [r.summary["eval"] for r in again.results] == [r.summary["eval"] for r in cmp.results]


def test_changed_settings_get_new_runs(comparison, tmp_path):
    cfg = comparison["cfg"].merge(["params.rnb.round_steps=4", "methods=[rnb@original]", "seeds=[0]"])
    out = comparison["out"]
    cmp = run_compare(cfg, out, progress=False)
    (res,) = cmp.results
    assert res.trained and res.out_dir.name not in {r.out_dir.name for r in comparison["cmp"].results}


def test_tables_report_means_paired_differences_and_cost(comparison):
    groups = group_results(comparison["again"].results)
    q = quality_table(groups)
    rows = {r[0]: r for r in q.rows}
    assert list(rows) == ["stratified / original", "stratified / regrouped", "proportional / original",
                          "rnb / original", "rnb / regrouped", "doremi / original"]
    assert rows["stratified / original"][1] == "2" and "±" in rows["stratified / original"][2]
    assert re.search(r"\(\d/2 better\)", rows["rnb / regrouped"][-1])
    cost = {r[0]: r for r in cost_table(groups).rows}
    assert cost["stratified / original"][2] == f"{STEPS} ± 0"  # the reference reaches its own final loss at the end
    assert cost["stratified / original"][4] == "—" and "±" in cost["rnb / original"][4]
    assert cost["doremi / original"][5] != "—" and "runs 2" in cost["doremi / original"][6]
    files = comparison["files"]
    for key in ("loss_curves", "domain_curves", "mixtures", "rnb_rounds", "gram", "regroup_map"):
        assert files[key].stat().st_size > 10_000
    assert "| rnb / regrouped | 2 |" in files["table"].read_text()


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("DOMIX_REQUIRE_BROWSER"):
            pytest.fail("DOMIX_REQUIRE_BROWSER is set but there is no chromium (apt-get install chromium)")
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    return path


def test_html_report_renders_in_headless_chromium(comparison, tmp_path):
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    report = comparison["files"]["report"]
    text = report.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text  # self-contained
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri())
        assert page.title() == "domix compare: demo"
        headers = page.eval_on_selector_all("table:first-of-type th", "els => els.map(e => e.textContent)")
        assert headers[:3] == ["method / domains", "seeds", "macro loss"]
        first_col = page.eval_on_selector_all("table tbody tr td:first-child", "els => els.map(e => e.textContent)")
        assert first_col.count("rnb / regrouped") == 3  # a row in each of the three tables
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
        assert [alt for alt, _, _ in images] == ["loss_curves", "domain_curves", "mixtures", "rnb_rounds", "gram",
                                                         "regroup_map"]
        assert all(done and width > 300 for _, done, width in images)  # every figure decoded
        assert "Regroup alone" in page.inner_text("#contrasts")
        config = page.inner_text("#config")
        assert "seeds:" in config and "round_steps: 2" in config and "preset: micro" in config
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert requests == [report.as_uri()]  # nothing else was fetched
    assert (tmp_path / "report.png").stat().st_size > 50_000
