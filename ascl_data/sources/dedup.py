"""Exact and near-duplicate removal that streams: constant work per prompt, compact memory.

Exact: a 64-bit xxhash of the normalised text (lower case, punctuation dropped, whitespace collapsed).
Near: MinHash over word shingles with LSH banding; a prompt that shares a band with an earlier one is a near
duplicate (estimated Jaccard similarity around `threshold` or more). Seen keys live in an open-addressing table of
unsigned 64-bit integers (8 bytes a slot), so a million prompts cost tens of megabytes, not a gigabyte of Python
ints. All hashes are seeded and process-independent, so a rebuild drops exactly the same prompts.
"""

from __future__ import annotations

import re
from array import array

import numpy as np
import xxhash

_WORD = re.compile(r"\w+", re.UNICODE)
_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64(0xFFFFFFFF)


def normalise_text(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class U64Set:
    """A set of uint64 keys in one flat array (linear probing; 0 marks an empty slot)."""

    def __init__(self, capacity: int = 1 << 16):
        size = 1
        while size < capacity * 2:
            size <<= 1
        self._table = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: int) -> bool:
        key = key or 1
        table, mask = self._table, self._mask
        i = (key ^ (key >> 29)) & mask
        while True:
            slot = table[i]
            if slot == key:
                return True
            if slot == 0:
                return False
            i = (i + 1) & mask

    def add(self, key: int) -> bool:
        """Insert `key`; True if it was already present."""
        key = key or 1
        table, mask = self._table, self._mask
        i = (key ^ (key >> 29)) & mask
        while True:
            slot = table[i]
            if slot == key:
                return True
            if slot == 0:
                table[i] = key
                self._n += 1
                if self._n * 2 > len(table):
                    self._grow()
                return False
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._table
        self._table = array("Q", bytes(8 * len(old) * 2))
        self._mask = len(self._table) - 1
        self._n = 0
        for key in old:
            if key:
                self.add(key)

    @property
    def nbytes(self) -> int:
        return len(self._table) * 8


def lsh_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm whose S-curve midpoint (1/b)^(1/r) is nearest the threshold."""
    best = (num_perm, 1)
    best_err = float("inf")
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if bands < 1:
            break
        err = abs((1.0 / bands) ** (1.0 / rows) - threshold)
        if err < best_err:
            best, best_err = (bands, rows), err
    return best


class Deduplicator:
    """Streams prompts through; `check(text)` says whether an earlier prompt already covered it."""

    def __init__(self, exact: bool = True, near: bool = True, threshold: float = 0.8, num_perm: int = 64,
                 shingle: int = 3, seed: int = 0):
        self.exact, self.near, self.shingle, self.seed = exact, near, shingle, seed
        self.bands, self.rows = lsh_bands(num_perm, threshold)
        rng = np.random.default_rng(seed)
        n = self.bands * self.rows
        self._a = rng.integers(1, int(_MERSENNE), size=n, dtype=np.uint64)
        self._b = rng.integers(0, int(_MERSENNE), size=n, dtype=np.uint64)
        self._exact = U64Set()
        self._lsh = U64Set()

    def signature(self, words: list[str]) -> np.ndarray:
        k = self.shingle
        shingles = [" ".join(words[i : i + k]) for i in range(max(1, len(words) - k + 1))]
        hv = np.fromiter((xxhash.xxh32_intdigest(s.encode(), self.seed) for s in shingles), dtype=np.uint64, count=len(shingles))
        with np.errstate(over="ignore"):
            perm = ((hv[:, None] * self._a[None, :] + self._b[None, :]) % _MERSENNE) & _MAX32
        return perm.min(axis=0)

    def check(self, text: str) -> str | None:
        """None for a new prompt, else "duplicate" or "near_duplicate" (the prompt is remembered either way)."""
        norm = normalise_text(text)
        if self.exact and self._exact.add(xxhash.xxh64_intdigest(norm.encode(), self.seed)):
            return "duplicate"
        if self.near:
            words = norm.split()
            if not words:
                return None
            sig = self.signature(words).reshape(self.bands, self.rows)
            seen = False
            for band, row in enumerate(sig):
                if self._lsh.add(xxhash.xxh64_intdigest(row.tobytes(), band)):
                    seen = True
            if seen:
                return "near_duplicate"
        return None

    @property
    def nbytes(self) -> int:
        return self._exact.nbytes + self._lsh.nbytes
