"""Multi-stage pipelines on tiny real runs: artifacts, cost accounting, resume from finished stages."""

import json

import numpy as np
import pytest

from domix.pipelines import PIPELINES, PipelineError, build_pipeline
from domix.run import train
from domix.train.callbacks import Callback


class Interrupt(Callback):
    name = "interrupt"

    def on_step_start(self, trainer, step):
        if step == 2:
            raise KeyboardInterrupt


def _cfg(micro_config, out, steps=4):
    return micro_config(out, steps=steps, eval_every=steps, checkpoint_every=steps)


def test_doremi_pipeline_resumes_from_finished_stages_and_the_cost_reaches_the_final_run(
    tmp_path, micro_config, monkeypatch
):
    cfg = _cfg(micro_config, tmp_path / "unused")
    out = tmp_path / "doremi"
    pipe = build_pipeline("doremi", cfg, out)
    import domix.pipelines as run_mod  # the name the stages call

    calls = []
    real_train = run_mod.train

    def spy(c, resume=False, callbacks=None, data=None):
        calls.append(c.out_dir)
        if c.out_dir.endswith("proxy") and len(calls) == 2:  # kill the proxy run mid-way
            return real_train(c, resume, [Interrupt()], data)
        return real_train(c, resume, callbacks, data)

    monkeypatch.setattr(run_mod, "train", spy)
    with pytest.raises(KeyboardInterrupt):
        pipe.run()
    assert (out / "stages" / "reference.json").exists() and not (out / "stages" / "proxy.json").exists()
    art = build_pipeline("doremi", cfg, out).run()  # the reference stage is not run again
    assert [c.rsplit("/", 1)[-1] for c in calls] == ["reference", "proxy", "proxy"]
    w = art.mixture.weights
    assert np.all(w >= 1e-3 / len(w) - 1e-12) and w.sum() == pytest.approx(1.0)
    # 2 runs of 4 steps; the proxy ran the reference forward once per step
    assert art.extra["runs"] == 2 and art.extra["backward_passes"] == 8
    assert art.extra["forward_tokens"] == 4 * 4 * 64 and art.extra["forward_passes"] > 8 + 4
    proxy = json.loads((out / "proxy" / "summary.json").read_text())
    assert proxy["extra_compute"]["forward_passes"] == 4
    # a final run on the artifact reports what it cost
    final = train(cfg.merge([f"out_dir={tmp_path / 'final'}", *art.train_with]), data=pipe.data)
    assert final.summary["extra_compute"]["runs"] == 2
    assert np.allclose(list(final.summary["mixture"].values()), w)
    with pytest.raises(PipelineError, match="different run config"):
        build_pipeline("doremi", cfg.merge(["train.lr=1e-3"]), out).run()


@pytest.mark.slow
def test_skillit_graph_then_online_run(tmp_path, micro_config):
    cfg = _cfg(micro_config, tmp_path / "unused", steps=4)
    art = build_pipeline("skillit", cfg, tmp_path / "sk", {"steps": 2, "round_steps": 2}).run()
    g = json.loads(art.path.read_text())
    m = len(g["domains"])
    A = np.asarray(g["graph"])
    assert A.shape == (m, m) and np.all(np.isfinite(A))
    # training on a domain lowers its own loss the most, relative to its start
    assert np.all(A.diagonal() > 0)
    assert art.extra["runs"] == m and art.extra["eval_tokens"] > 0
    run = train(cfg.merge([f"out_dir={tmp_path / 'online'}", *art.train_with]))
    assert run.summary["extra_compute"]["runs"] == m
    assert run.summary["extra_compute"]["eval_tokens"] > art.extra["eval_tokens"]  # + its own evals


def test_regmix_pipeline_on_real_proxy_runs(tmp_path, micro_config):
    cfg = _cfg(micro_config, tmp_path / "unused", steps=2)
    art = build_pipeline("regmix", cfg, tmp_path / "rm", ["runs=2", "candidates=2000", "top_k=16"]).run()
    data = json.loads(art.path.read_text())
    assert len(data["swarm"]) == 2 and data["regressor"] in ("lightgbm", "linear")
    assert art.extra["runs"] == 2 and art.mixture.weights.sum() == pytest.approx(1)


def test_every_pipeline_declares_reference_and_cost():
    for name, cls in PIPELINES.items():
        assert cls.reference and cls.cost and cls.name == name


def test_skillit_single_domain_runs_default_to_a_tenth_of_a_token_budget(tmp_path, micro_config):
    cfg = _cfg(micro_config, tmp_path / "unused", steps=4).merge([f"train.tokens={20 * 4 * 64}"])  # 20 steps
    assert cfg.train.total_steps(64) == 20 and cfg.train.steps == 4
    art = build_pipeline("skillit", cfg, tmp_path / "sk").run()
    assert json.loads(art.path.read_text())["steps"] == 2  # a tenth of 20, not of train.steps
