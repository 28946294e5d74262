"""The comparison's grid spec and table arithmetic, without training."""

from pathlib import Path

import pytest

from domix.compare.grid import Cell, CellResult, CompareConfig
from domix.compare.table import (
    cost_table,
    extra_text,
    group_results,
    mean_sd,
    quality_table,
    steps_to_reach,
)
from domix.config import ConfigError


def test_grid_order_and_domain_restrictions():
    cfg = CompareConfig(methods=["stratified", "doge@original", "x@regrouped"], seeds=[3, 4])
    assert cfg.grid() == [Cell(m, d, s) for s in (3, 4) for m, d in [
        ("stratified", "original"), ("stratified", "regrouped"), ("doge", "original"), ("x", "regrouped")]]
    assert CompareConfig(domains=["original"], methods=["rnb", "rnb@original+regrouped"]).grid() == [
        Cell("rnb", "original", s) for s in (0, 1, 2) for _ in range(2)]
    # the corpus's own sub-domains are a third domain set, only when asked for
    assert CompareConfig(domains=["original", "subdomain"], methods=["dograph@subdomain"], seeds=[0]).grid() == [
        Cell("dograph", "subdomain", 0)]
    assert CompareConfig().domains == ["original", "regrouped"]


@pytest.mark.parametrize("bad, words", [
    ({"domains": ["topics"]}, "not one of"),
    ({"methods": ["rnb@orig"]}, "'orig' is not one of"),
    ({"domains": ["original"], "methods": ["rnb@regrouped"]}, "runs on none of the domain sets"),
    ({"seeds": []}, "at least one seed"),
    ({"regroup": ["embed.precison=fp32"]}, "unknown key 'embed.precison'"),
])
def test_bad_grid_specs_are_refused_with_the_reason(bad, words):
    with pytest.raises(ConfigError, match=words):
        CompareConfig.from_dict(bad)


def test_regroup_settings_are_pinned_and_results_lines_from_before_a_setting_still_match():
    cfg = CompareConfig.from_dict({"k": 6, "regroup": ["embed.precision=fp32"]})
    rg = cfg.regroup_config()
    assert (rg.k, rg.seed, rg.embed.precision) == (6, 0, "fp32")
    assert CompareConfig().regroup_config().embed.precision == "auto"
    old = CompareConfig().to_dict()
    old.pop("regroup")  # a line written before the setting existed: its default
    assert CompareConfig().same_grid(old) and not cfg.same_grid(old)
    assert not CompareConfig(seeds=[0]).same_grid(old)


def test_steps_to_reach_interpolates_between_evaluations():
    curve = [(10, 8.0), (20, 7.0), (30, 6.0)]
    assert steps_to_reach(curve, 6.5) == pytest.approx(25.0)
    assert steps_to_reach(curve, 7.0) == 20.0
    assert steps_to_reach(curve, 9.0) == 10.0  # already there at the first evaluation
    assert steps_to_reach(curve, 5.9) is None


def test_mean_sd_and_extra_text():
    assert mean_sd([1.0]) == "1.0000"
    assert mean_sd([1.0, 2.0, 3.0], 2) == "2.00 ± 1.00"  # sample standard deviation
    assert mean_sd([]) == "—" and mean_sd([0.5], 1, signed=True) == "+0.5"
    assert extra_text({"eval_tokens": 3e5, "runs": 2, "backward_passes": 0}) == "runs 2, eval tok 300k"
    assert extra_text({}) == "none"


def _result(method, layer, seed, macro, wall, curve_dir: Path, extra=None):
    curve_dir.mkdir(parents=True, exist_ok=True)
    rows = [f'{{"step": {s}, "kind": "eval", "loss/val_macro": {v}}}' for s, v in ((4, macro + 1), (8, macro))]
    (curve_dir / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    ev = {"macro": macro, "token_average": macro, "worst": macro + 0.5, "worst_domain": "a",
          "per_domain": {"a": macro + 0.5, "b": macro - 0.5}}
    return CellResult(Cell(method, layer, seed), curve_dir,
                      {"eval": ev, "wall_s": wall, "steps": 8, "extra_compute": extra or {}})


def test_tables_pair_runs_by_seed(tmp_path):
    rs = [_result("stratified", "original", 0, 6.0, 10.0, tmp_path / "s0"),
          _result("stratified", "original", 1, 6.2, 10.0, tmp_path / "s1"),
          _result("rnb", "original", 0, 5.9, 11.0, tmp_path / "r0", {"runs": 2}),
          _result("rnb", "original", 1, 6.3, 12.0, tmp_path / "r1", {"runs": 2, "wall_s": 30.0})]
    groups = group_results(rs)
    q = {r[0]: r for r in quality_table(groups).rows}
    assert q["rnb / original"][2] == "6.1000 ± 0.2828"
    assert q["rnb / original"][-1] == "+0.0000 ± 0.1414 (1/2 better)"  # -0.1 and +0.1, paired by seed
    c = {r[0]: r for r in cost_table(groups).rows}
    assert c["rnb / original"][4] == "1.150 ± 0.071"  # wall ratios 1.1 and 1.2
    # seed 0 reaches 6.0 between step 4 (6.9) and 8 (5.9); seed 1 never reaches 6.2 (ends at 6.3)
    assert c["rnb / original"][2] == f"{4 + 4 * 0.9 / 1.0:.0f} (1/2)"
    assert c["rnb / original"][5] == "15" and c["rnb / original"][6] == "runs 2"


def test_pieces_of_one_domain_set_trained_on_different_data_are_named(tmp_path):
    from domix.compare.grid import Comparison
    from domix.compare.report import grid_notes

    def piece(layer, seed, domains_fp):
        r = _result("stratified", layer, seed, 5.0, 1.0, tmp_path / f"{layer}{seed}")
        r.summary["fingerprints"] = {"corpus": "c", "domains": domains_fp}
        return r

    same = [piece("original", 0, "o"), piece("original", 1, "o"), piece("regrouped", 0, "r1")]
    assert grid_notes(Comparison(CompareConfig(), tmp_path, same, None, None)) == ""
    mixed = same + [piece("regrouped", 1, "r2")]  # regrouped again on another machine: other clusters
    text = grid_notes(Comparison(CompareConfig(), tmp_path, mixed, None, None))
    assert "mixed data: the regrouped pieces were trained on 2 different versions" in text
    assert "[stratified / regrouped seed 0]; [stratified / regrouped seed 1]" in text and "original" not in text
