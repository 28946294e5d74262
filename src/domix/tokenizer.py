"""Tokenizers: a byte-level BPE trained offline on the training split, or one the user brings.

    tok = TokenizerConfig().build(corpus)                     # BPE, vocab 8192, cached by corpus
    tok = TokenizerConfig(path="my/tokenizer.json").build(corpus)
    tok = TokenizerConfig(path="path/to/hf-model-dir").build(corpus)   # AutoTokenizer, offline

Trained tokenizers are cached under ``<cache>/tokenizers/<corpus fingerprint>-bpe<vocab>/``. Every
tokenizer has a fingerprint (a hash of its serialised form) that token stores and checkpoints keep.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import io
from .config import Config, ConfigError

if TYPE_CHECKING:
    import tokenizers

    from .corpus.store import Corpus

EOS = "<|endoftext|>"
# How a prompt/response record's prompt is written before tokenization ("{prompt}" is replaced by
# the record's prompt; the response follows the template's text directly, then EOS). The template
# "chat" is the tokenizer's own chat template (a user turn, then the assistant's turn opened).
INSTRUCTION_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"
CHAT = "chat"


def render_prompt(template: str, prompt: str) -> str:
    if "{prompt}" not in template:
        raise ConfigError(f"the prompt template has no {{prompt}} placeholder: {template!r}")
    return template.replace("{prompt}", prompt)


class Tokenizer:
    """A fast (Rust) tokenizer with an end-of-sequence id and a fingerprint."""

    def __init__(self, backend: tokenizers.Tokenizer, eos_id: int, source: str,
                 chat: Callable[[str], str] | None = None) -> None:
        self.backend = backend
        self.eos_id = int(eos_id)
        self.source = source
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
        self.fingerprint = io.fingerprint(backend.to_str())
        self.chat = chat  # a prompt as the model's chat template writes a user turn (HF folders)

    def render_prompt(self, template: str, prompt: str) -> str:
        """``prompt`` written with ``template``: one with ``{prompt}``, or ``chat``."""
        if template != CHAT:
            return render_prompt(template, prompt)
        if self.chat is None:
            raise ConfigError(f"data.template=chat: the tokenizer {self.source} has no chat template; "
                              "give a template with {prompt} instead")
        return self.chat(prompt)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(list(ids))

    def __repr__(self) -> str:
        return f"Tokenizer({self.source}, vocab {self.vocab_size}, eos {self.eos_id})"


@dataclass
class TokenizerConfig(Config):
    """``path`` unset: train a byte-level BPE of ``vocab_size`` on the corpus's training split."""

    vocab_size: int = 8192
    path: str | None = None  # a tokenizer.json file or a Hugging Face tokenizer/model folder
    gguf_file: str | None = None  # with ``path``: a GGUF file inside that folder (e.g. SmolLM2)
    min_frequency: int = 2

    def validate(self) -> None:
        if self.vocab_size < 260:
            raise ConfigError("tokenizer.vocab_size must be at least 260 (256 bytes + specials)")

    def build(self, corpus: Corpus | None = None) -> Tokenizer:
        if self.path:
            return load_tokenizer(self.path, self.gguf_file)
        if corpus is None:
            raise ConfigError("training a BPE tokenizer needs a corpus (or set tokenizer.path)")
        return train_bpe(corpus, self.vocab_size, self.min_frequency)


def load_tokenizer(path: str | Path, gguf_file: str | None = None) -> Tokenizer:
    import tokenizers

    path = Path(path)
    if path.is_file():
        backend = tokenizers.Tokenizer.from_file(str(path))
        eos = backend.token_to_id(EOS)
        if eos is None:
            raise ConfigError(f"{path}: the tokenizer has no '{EOS}' token to separate documents")
        return Tokenizer(backend, eos, str(path))
    if not path.is_dir():
        raise ConfigError(
            f"tokenizer path {path} does not exist (give a tokenizer.json or a folder)"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    hf = AutoTokenizer.from_pretrained(str(path), **kwargs)
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(f"{path}: only fast (Rust) tokenizers are supported")
    if hf.eos_token_id is None:
        raise ConfigError(f"{path}: the tokenizer defines no eos_token")
    chat = None
    if getattr(hf, "chat_template", None):
        def chat(prompt: str) -> str:
            return hf.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                          add_generation_prompt=True)
    return Tokenizer(backend, hf.eos_token_id, str(path), chat)


def train_bpe(corpus: Corpus, vocab_size: int = 8192, min_frequency: int = 2) -> Tokenizer:
    """Byte-level BPE on the training split, cached by corpus fingerprint and settings."""
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    out = (
        io.cache_dir()
        / "tokenizers"
        / f"{corpus.fingerprint[:16]}-bpe{vocab_size}-f{min_frequency}"
        / "tokenizer.json"
    )
    if out.exists():
        return load_tokenizer(out)
    tk = RustTokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def texts():  # a prompt/response corpus: its prompts too (the default template's words are in them)
        columns = ["text", "split"] + (["prompt"] if corpus.records else [])
        for batch in corpus.iter_batches(columns=columns):
            rows = zip(*(batch.column(i).to_pylist() for i in range(len(columns))))
            for text, split, *prompt in rows:
                if split == "train":
                    yield from (*prompt, text)
        if corpus.records:
            yield INSTRUCTION_TEMPLATE

    tk.train_from_iterator(texts(), trainer=trainer)
    with io.atomic_path(out) as tmp:
        tk.save(str(tmp))
    return load_tokenizer(out)
