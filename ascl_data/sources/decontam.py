"""Decontamination: drop training prompts that share word n-grams with named evaluation sets.

The evaluation sets (local files or Hub datasets, read through the same source code as the prompts) are
indexed once as hashed n-grams of their normalised text; each training prompt is then checked in O(its length).
"""

from __future__ import annotations

from collections.abc import Iterable

import xxhash

from ascl_data.sources.dedup import U64Set, normalise_text


def ngram_hashes(text: str, n: int) -> list[int]:
    words = normalise_text(text).split()
    if len(words) < n:  # short texts count as one n-gram of all their words
        return [xxhash.xxh64_intdigest(" ".join(words).encode())] if words else []
    return [xxhash.xxh64_intdigest(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)]


class Decontaminator:
    """`check(text)` returns (contaminated, detail)."""

    def __init__(self, n: int = 8, min_overlap: float = 0.0):
        self.n, self.min_overlap = n, min_overlap
        self._index = U64Set()
        self.sets: dict[str, int] = {}  # evaluation set name -> prompts indexed

    def add_eval_texts(self, name: str, texts: Iterable[str]) -> None:
        count = 0
        for text in texts:
            for h in ngram_hashes(text, self.n):
                self._index.add(h)
            count += 1
        self.sets[name] = count

    def check(self, text: str) -> tuple[bool, str]:
        if not self.sets:
            return False, ""
        grams = ngram_hashes(text, self.n)
        if not grams:
            return False, ""
        hits = sum(1 for h in grams if h in self._index)
        share = hits / len(grams)
        if hits and share >= self.min_overlap:
            return True, (
                f"{hits} of {len(grams)} word {self.n}-grams also occur in the evaluation set(s) "
                f"{sorted(self.sets)}"
            )
        return False, ""
