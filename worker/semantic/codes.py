"""Sign codes of embeddings (random-hyperplane hashing) and their float16 form.

Two unit vectors at angle θ disagree on each bit with probability θ/π, so the Hamming distance
of their codes ranks entries roughly as their cosine would: a paraphrase at cosine 0.95 differs
on about a tenth of the bits, an unrelated prompt on about half. The hyperplanes are a fixed
±1 matrix drawn from SHAKE-256, so every worker, of any numpy version, draws the same codes.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import numpy.typing as npt

# Bits of a sign code: enough that a paraphrase ranks among the first candidates of 100,000
# other entries, few enough that ranking them stays within the lookup's budget.
CODE_BITS = 256
Vector = npt.NDArray[np.float32]
_SEED = b"promptq semantic cache hyperplanes v1"


@lru_cache(maxsize=4)
def _hyperplanes(dimensions: int) -> Vector:
    bits = np.unpackbits(
        np.frombuffer(hashlib.shake_256(_SEED).digest(dimensions * CODE_BITS // 8), np.uint8)
    )
    return (bits.reshape(dimensions, CODE_BITS).astype(np.float32) * 2) - 1


def sign_code(vector: Vector) -> bytes:
    """CODE_BITS / 8 bytes: bit i set when the vector is on the positive side of plane i."""
    return np.packbits(vector @ _hyperplanes(vector.shape[0]) > 0).tobytes()


def to_float16(vector: Vector) -> bytes:
    return vector.astype("<f2").tobytes()


def from_float16(raw: bytes) -> Vector:
    return np.frombuffer(raw, "<f2").astype(np.float32)


def cosine(unit: Vector, other: Vector) -> float:
    """Cosine similarity of a unit vector and another vector (float16 rounding undone)."""
    norm = float(np.linalg.norm(other))
    return float(unit @ other) / norm if norm else 0.0
