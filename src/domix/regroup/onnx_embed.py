"""``embed.name: onnx``: the sentence-transformers model run by ONNX Runtime, fp32 or with int8 weights.

    EmbedConfig(name="onnx").build()                     # fp32
    EmbedConfig(name="onnx", quantize="int8").build()    # int8 weights (VNNI where the CPU has it)

The model's whole pipeline (transformer, its pooling, its normalisation: whatever the model folder's
``modules.json`` lists) is exported once with ``torch.onnx.export`` into
``<cache>/onnx/<model fingerprint>-<opset>/model.onnx``; ``int8`` adds ``model-int8.onnx``, made
from it by ONNX Runtime's dynamic quantization of the matrix products' weights, per output channel
(per-tensor scales measured a mean cosine of 0.944 to fp32 on demo documents; per channel, 0.994).
Nothing is downloaded: the export starts from the same local model folder as the torch backend.
Writes are atomic, so an interrupted export is redone, never half-read.

Texts are sorted by length and batched as sentence-transformers does, tokenized by the model's own
tokenizer (truncated to ``max_tokens``), and the rows put back in order. Without ``onnxruntime``
(``pip install 'domix[embed]'``) the torch backend is used, and a message says so.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .. import io
from .embed import EMBEDDERS, EmbedConfig, SentenceTransformerEmbedder, check_texts

OPSET = 17


def onnx_embedder(cfg: EmbedConfig):
    """The ONNX backend, or the torch one (with a message) where onnxruntime is missing."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("embed.backend=onnx: onnxruntime is not installed (pip install 'domix[embed]'); "
              "embedding with torch instead", flush=True)
        return SentenceTransformerEmbedder(cfg)
    return OnnxEmbedder(cfg)


class OnnxEmbedder:
    def __init__(self, cfg: EmbedConfig) -> None:
        import onnxruntime as ort
        import torch

        st = SentenceTransformerEmbedder(cfg.merge(["precision=fp32"]))  # loads the model folder
        self.tokenizer = st.model.tokenizer
        self.inputs = list(self.tokenizer.model_input_names)
        self.max_tokens, self.batch_size, self.dim = cfg.max_tokens, cfg.batch_size, st.dim
        folder = io.cache_dir() / "onnx" / f"{st.model_fingerprint[:16]}-opset{OPSET}"
        path = folder / "model.onnx"
        if not path.exists():
            _export(st.model, self.inputs, path)
        if cfg.quantize == "int8":
            path = _quantized(path, folder / "model-int8.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self.fingerprint = io.fingerprint("onnx", st.model_fingerprint, cfg.max_tokens, cfg.quantize, OPSET)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        check_texts(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                 max_length=self.max_tokens, return_tensors="np")
            (vecs,) = self.session.run(None, {n: enc[n].astype(np.int64) for n in self.inputs})
            out[rows] = vecs
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _export(model, inputs: list[str], path: Path) -> None:
    """The sentence-transformers pipeline as one ONNX graph: token ids in, sentence vector out."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(dict(zip(inputs, tensors)))["sentence_embedding"]

    print(f"exporting the embedding model to ONNX: {path}", flush=True)
    example = model.tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in inputs} | {"embedding": {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(path) as tmp, torch.no_grad(), _quiet():
        torch.onnx.export(Pipeline().eval(), tuple(example[n] for n in inputs), str(tmp), input_names=inputs,
                          output_names=["embedding"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def _quantized(src: Path, dst: Path) -> Path:
    if not dst.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with io.atomic_path(dst) as tmp, _quiet():
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
    return dst


@contextmanager
def _quiet():
    """The exporters' deprecation and tracer warnings are about their internals, not the model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)  # the quantizer's advice to pre-process goes to the root logger
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


EMBEDDERS.register("onnx")(onnx_embedder)
