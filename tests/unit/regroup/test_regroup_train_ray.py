import numpy as np
import pytest

from domix.regroup import regroup


def test_training_runs_unchanged_on_regrouped_domains(hashing_regroup, micro_config, tmp_path):
    from domix.run import train

    cfg = micro_config(tmp_path / "run", steps=4, eval_every=4, checkpoint_every=4).merge(
        ["data.domains=regrouped:h5"]
    )
    res = train(cfg)
    assert res.summary["domains"] == "regrouped:h5"
    assert set(res.mixture.domains) <= {"c00", "c01", "c02", "c03", "c04"}
    assert len(res.mixture.domains) == 5
    # evaluation stays on the original domains, the fixed yardstick
    assert set(res.eval.names) == {"code", "dialogue", "drama", "math", "news"}
    assert np.isfinite(res.eval.macro)


def test_proxy_sweep_trains_one_tiny_model_per_k(demo_corpus, hashing_config):
    from domix.regroup import RegroupConfig

    tiny = [
        "model.preset=micro",
        "train.steps=3",
        "train.batch_size=4",
        "train.warmup_steps=1",
        "train.eval_every=3",
        "train.eval_tokens_per_domain=512",
        "train.log_every=1",
        "train.checkpoint_every=100",
        "train.progress=false",
    ]
    choose = {"method": "proxy", "k_min": 2, "k_max": 3, "k_step": 1, "proxy_overrides": tiny}
    cfg = RegroupConfig.from_dict({**hashing_config.to_dict(), "k": "auto", "choose_k": choose})
    res = regroup(demo_corpus, cfg, name="px", progress=False)
    curve = res.meta["k_selection"]["curve"]
    assert [r["k"] for r in curve] == [2, 3]
    assert all(np.isfinite(r["val_loss_macro"]) for r in curve)
    assert res.k == min(curve, key=lambda r: r["val_loss_macro"])["k"]
    assert (res.path / "k_curve.png").exists()


def test_ray_engine_gives_the_local_assignment(demo_corpus, hashing_config, hashing_regroup):
    """A real local Ray instance: map_batches embedding actors and assignment tasks."""
    pytest.importorskip("ray")
    cfg = hashing_config.merge(["engine=ray", "ray.num_cpus=2"])
    res = regroup(demo_corpus, cfg, name="h5-ray", progress=False)
    local = hashing_regroup
    assert res.meta["embedder_fingerprint"] == local.meta["embedder_fingerprint"]
    assert res.meta["fit_sample_docs"] == local.meta["fit_sample_docs"]
    assert np.array_equal(res.centroids_KD, local.centroids_KD)
    assert np.array_equal(res.assignment.cluster_N, local.assignment.cluster_N)
    assert np.allclose(res.assignment.distance_N, local.assignment.distance_N, atol=1e-5)
    assert res.assignment.ids.equals(local.assignment.ids)
    assert res.meta["pbar"] == local.meta["pbar"]
