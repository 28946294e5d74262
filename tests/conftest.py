"""Shared fixtures: a fresh cache per test session and a capped slice of the real demo corpus."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_flush_denormal(True)
torch.set_num_threads(min(2, os.cpu_count() or 1))

DEMO_CAP = 120  # documents per domain: real text, builds in seconds


@pytest.fixture(scope="session", autouse=True)
def domix_cache(tmp_path_factory: pytest.TempPathFactory):
    """Every artifact a test builds goes to a fresh cache (downloads stay in the user cache)."""
    from domix import io

    downloads = io.downloads_dir()
    cache = tmp_path_factory.mktemp("domix-cache")
    old = {k: os.environ.get(k) for k in ("DOMIX_CACHE", "DOMIX_DOWNLOADS", "HF_HUB_OFFLINE")}
    os.environ.update(DOMIX_CACHE=str(cache), DOMIX_DOWNLOADS=str(downloads), HF_HUB_OFFLINE="1")
    yield cache
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def demo_corpus(domix_cache):
    from domix.corpus import build_corpus

    return build_corpus("demo", max_docs_per_domain=DEMO_CAP, progress=False)


@pytest.fixture(scope="session")
def demo_tokenizer(demo_corpus):
    from domix.tokenizer import TokenizerConfig

    return TokenizerConfig().build(demo_corpus)


@pytest.fixture(scope="session")
def demo_store(demo_corpus, demo_tokenizer):
    from domix.data.token_store import TokenStore

    return TokenStore.build(demo_corpus, demo_tokenizer, progress=False)


@pytest.fixture(scope="session")
def micro_config(demo_corpus):
    """Factory: a run config for the 1-layer micro model on the capped demo corpus (seconds a run)."""
    return micro_run_config


def micro_run_config(out_dir, **train):
    from domix.run import RunConfig

    return RunConfig.from_dict(
        {
            "out_dir": str(out_dir),
            "data": {"corpus": "demo", "max_docs_per_domain": DEMO_CAP},
            "model": {"preset": "micro"},
            "train": {
                "steps": 8,
                "batch_size": 4,
                "lr": 3e-3,
                "warmup_steps": 2,
                "eval_every": 4,
                "eval_tokens_per_domain": 512,
                "log_every": 2,
                "checkpoint_every": 4,
                "progress": False,
                **train,
            },
        }
    )
