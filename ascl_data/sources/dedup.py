"""Exact and near-duplicate removal that streams: constant work per prompt, memory a few bytes per prompt.

Exact: a 64-bit xxhash of the normalised text (lower case, punctuation dropped, whitespace collapsed).
Near: MinHash over word shingles with LSH banding finds at most one candidate per band; a prompt is dropped only if
its word-shingle Jaccard similarity with a candidate, computed exactly, reaches `threshold`. The check matters for
safety data: a safe prompt and its harmful twin ("kill a Python process" / "kill a person") share most words and
often a band, yet both must stay.

Memory: seen keys live in open-addressing tables of 8-byte words split into fixed-size segments (no rehash, so no
moment with two copies), and each kept prompt's shingle hashes go to a temporary file that is read back only for
a candidate. All hashes are seeded and process-independent, so a rebuild drops exactly the same prompts.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from array import array

import numpy as np
import xxhash

_WORD = re.compile(r"\w+", re.UNICODE)
_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64(0xFFFFFFFF)
_REF_BITS = 40  # a band entry: 24-bit key tag | 40-bit position of the candidate's shingles in the spill file
_REF_MASK = (1 << _REF_BITS) - 1
_BAND_RECALL = 0.95  # chance that a pair exactly at the threshold shares a band (and so is checked)


def normalise_text(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class _SegmentedTable:
    """Nonzero 64-bit words in linear-probing segments; a segment at 80% load is frozen and the next one opened,
    twice as large up to `max_slots`, so a small table stays small and a large one never rehashes.

    Two words are the same entry when they agree above `tag_shift` (all bits for a set; the tag for a map whose low
    bits carry a value). Lookups probe every segment: a handful per ten million entries.
    """

    def __init__(self, tag_shift: int = 0, first_slots: int = 1 << 16, max_slots: int = 1 << 22):
        self._shift, self._next, self._max = tag_shift, first_slots, max_slots
        self._segments: list[tuple[array, int]] = []  # (slots, mask)
        self._fill = self._limit = 0  # entries in the open (last) segment, and its limit
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def find(self, home: int, word: int) -> int:
        """The stored word with `word`'s tag, or 0."""
        shift = self._shift
        tag = word >> shift
        for seg, mask in self._segments:
            i = home & mask
            while slot := seg[i]:
                if slot >> shift == tag:
                    return slot
                i = (i + 1) & mask
        return 0

    def insert_new(self, home: int, word: int) -> None:
        """Store `word` (the caller has checked that its tag is absent)."""
        if self._fill >= self._limit:
            size = self._next
            self._segments.append((array("Q", [0]) * size, size - 1))  # one allocation, no temporary
            self._fill, self._limit, self._next = 0, size * 4 // 5, min(size * 2, self._max)
        seg, mask = self._segments[-1]
        i = home & mask
        while seg[i]:
            i = (i + 1) & mask
        seg[i] = word
        self._fill += 1
        self._n += 1


class U64Set:
    """A set of uint64 keys, 8 bytes each at 80% load (0 is stored as 1)."""

    def __init__(self) -> None:
        self._table = _SegmentedTable()

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, key: int) -> bool:
        key = key or 1
        return self._table.find(key ^ (key >> 29), key) != 0

    def add(self, key: int) -> bool:
        """Insert `key`; True if it was already present."""
        key = key or 1
        home = key ^ (key >> 29)
        if self._table.find(home, key):
            return True
        self._table.insert_new(home, key)
        return False


def lsh_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """(bands, rows): the fewest bands (memory per prompt) such that a pair at `threshold` shares a band with
    probability >= 95%, with as many rows as that allows and at least 2 where num_perm permits (a one-row band
    matches any two prompts sharing one min-hash: needless candidates); bands * rows <= num_perm."""
    for bands in range(1, num_perm + 1):
        need = 1.0 - (1.0 - _BAND_RECALL) ** (1.0 / bands)  # per-band collision probability required
        rows = min(num_perm // bands, int(math.log(need) / math.log(threshold))) if threshold < 1 else num_perm // bands
        if rows >= 2 or (rows >= 1 and bands * 2 > num_perm):
            return bands, rows
    return num_perm, 1


class Deduplicator:
    """Streams prompts through; `check(text)` says whether an earlier kept prompt already covers it."""

    def __init__(self, exact: bool = True, near: bool = True, threshold: float = 0.8, num_perm: int = 64,
                 shingle: int = 3, seed: int = 0):
        self.exact, self.near, self.threshold, self.shingle, self.seed = exact, near, threshold, shingle, seed
        self.bands, self.rows = lsh_bands(num_perm, threshold)
        rng = np.random.default_rng(seed)
        n = self.bands * self.rows
        self._a = rng.integers(1, int(_MERSENNE), size=n, dtype=np.uint64)
        self._b = rng.integers(0, int(_MERSENNE), size=n, dtype=np.uint64)
        self._exact = U64Set()
        self._bands = _SegmentedTable(tag_shift=_REF_BITS)
        self._spill = tempfile.TemporaryFile(prefix="ascl-dedup-") if near else None
        self._spill_end = 0  # bytes written; positions are 4-byte units, +1 so that 0 stays "empty"

    def shingles(self, words: list[str]) -> np.ndarray:
        """Sorted unique 32-bit hashes of the word `shingle`-grams (one shingle for a shorter text)."""
        k = self.shingle
        grams = (" ".join(words[i : i + k]) for i in range(max(1, len(words) - k + 1)))
        return np.unique(np.fromiter((xxhash.xxh32_intdigest(g.encode(), self.seed) for g in grams), dtype=np.uint32))

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        hv = shingles.astype(np.uint64)
        with np.errstate(over="ignore"):
            perm = ((hv[:, None] * self._a[None, :] + self._b[None, :]) % _MERSENNE) & _MAX32
        return perm.min(axis=0)

    def check(self, text: str) -> str | None:
        """None for a new prompt, else "duplicate" or "near_duplicate". Every text's exact hash is remembered; only
        kept prompts are indexed for near duplicates, so a chain of small edits cannot drift far from a kept one."""
        norm = normalise_text(text)
        if self.exact and self._exact.add(xxhash.xxh64_intdigest(norm.encode(), self.seed)):
            return "duplicate"
        if not self.near:
            return None
        words = norm.split()
        if not words:
            return None
        sh = self.shingles(words)
        rows = self.signature(sh).reshape(self.bands, self.rows)
        keys = [xxhash.xxh64_intdigest(row.tobytes(), band) for band, row in enumerate(rows)]
        found = [self._bands.find(k, k) for k in keys]
        checked: set[int] = set()
        for word in found:
            ref = word & _REF_MASK
            if word and ref not in checked:
                checked.add(ref)
                if self._jaccard(sh, self._read(ref)) >= self.threshold:
                    return "near_duplicate"
        ref = self._write(sh)
        for k, word in zip(keys, found):
            if not word:
                self._bands.insert_new(k, (k >> _REF_BITS) << _REF_BITS | ref)
        return None

    @staticmethod
    def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
        inter = len(np.intersect1d(a, b, assume_unique=True))
        return inter / (len(a) + len(b) - inter)

    def _write(self, shingles: np.ndarray) -> int:
        assert self._spill is not None
        ref = self._spill_end // 4 + 1
        self._spill.write(np.uint32(len(shingles)).tobytes() + shingles.tobytes())
        self._spill_end += 4 * (len(shingles) + 1)
        if ref > _REF_MASK:
            raise OverflowError("near-duplicate spill file past 4 TiB")
        return ref

    def _read(self, ref: int) -> np.ndarray:
        assert self._spill is not None
        self._spill.flush()
        fd, pos = self._spill.fileno(), (ref - 1) * 4
        (n,) = np.frombuffer(os.pread(fd, 4, pos), dtype=np.uint32)
        return np.frombuffer(os.pread(fd, 4 * int(n), pos + 4), dtype=np.uint32)
