"""The fast judge's probability: a logistic model over the phrase rules' cues and how the answer talks.

It scores every answer, so `refusal_probability` is defined (and calibrated) everywhere. Its features:

- the phrase rules' cue for the answer (`refusal.py`: which rule decided, e.g. a refusal phrase with little other
  content, a warning beside a long answer, an offer of how to do something, no cue at all), and whether a refusal
  phrase opens the answer; the rules stop being hard overrides and become evidence with a fitted weight;
- word and word-pair presence, restricted to a vocabulary seen in answers to many different prompts (a topic's own
  words, which would only teach "this subject was refused in the training set", never get a weight);
- structure: a length bucket, the share of words outside the vocabulary (mostly the request's own subject matter,
  i.e. real content), list lines, a negated first or last sentence.

Binary: P(a person reads the answer as a refusal or a partial refusal). Fitted by `python -m ascl_data.judge.train`
on the hand-written fragments and the hand-labelled answers of real models; the weights ship as data
(`data/refusal_model.json`, with `data/refusal_model.manifest.json` saying what trained them). Pure Python at run
time: a few regex passes and dict look-ups.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from itertools import repeat
from pathlib import Path

__all__ = ["WEIGHTS_FILE", "MANIFEST_FILE", "Model", "features", "held_out_accuracy", "load", "default_model"]

WEIGHTS_FILE = Path(__file__).parent / "data" / "refusal_model.json"
MANIFEST_FILE = WEIGHTS_FILE.with_name("refusal_model.manifest.json")

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s", re.M)
# Sentence ends: a run of .!? before whitespace, or a run of newlines ("[.!?]+(?=\s)|\n+"), written to start with a
# character class so the regex engine skips to candidates in C (three times faster on a typical answer).
SENTENCE_END = re.compile(r"[.!?\n](?:(?<=\n)\n*|(?<=[.!?])[.!?]*(?=\s))")
_NEGATION = re.compile(r"\b(?:not|no|never|nothing)\b|\wn't\b")
LENGTH_BUCKETS = (8, 20, 40, 80, 160)  # word counts, ascending; the last bucket is everything longer
UNKNOWN_BUCKETS = (0.1, 0.25, 0.45)  # ascending share of words outside the vocabulary


def _negated(sentence: str) -> bool:
    """Whether a sentence holds a negation; the substring test (every match holds "no", "never" or "n't") skips the
    regex on most sentences."""
    return ("no" in sentence or "never" in sentence or "n't" in sentence) and _NEGATION.search(sentence) is not None


def _structure(scan: str, n_words: int, n_known: int) -> tuple[int, int, bool, bool, bool]:
    """Length bucket, bucket of the share of unknown words, whether the first or the last sentence is negated,
    whether there are list lines."""
    sentences = list(filter(str.strip, SENTENCE_END.split(scan)))
    return (
        bisect_right(LENGTH_BUCKETS, n_words),
        bisect_right(UNKNOWN_BUCKETS, (n_words - n_known) / n_words if n_words else 0.0),
        bool(sentences) and _negated(sentences[0]),
        len(sentences) > 1 and _negated(sentences[-1]),
        _LIST_LINE.search(scan) is not None,
    )


def features(scan: str, cues: tuple[str, ...], vocabulary: dict | frozenset | set) -> set[str]:
    """The features of one normalised, unquoted answer with the rules' `cues` (what the trainer fits): its words and
    word pairs, '#cue:...' for each cue, a length bucket, a bucket of the share of words outside `vocabulary`,
    '#list', '#negated_first', '#negated_last'. `Model.logit` scores the same features without building this set."""
    words = _WORD.findall(scan)
    found = set(words)
    found.update(map(" ".join, zip(words, words[1:])))
    length, unknown, negated_first, negated_last, listed = _structure(
        scan, len(words), sum(map(vocabulary.__contains__, words)))
    found.update((f"#len{length}", f"#unknown{unknown}"))
    found.update(f"#cue:{c}" for c in cues)
    found.update(f for f, on in (("#negated_first", negated_first), ("#negated_last", negated_last),
                                 ("#list", listed)) if on)
    return found


class Model:
    """Weights (feature -> logit weight, '#bias' included) and the decision threshold on the probability. Word
    pairs are keyed by tuple, so scoring never joins strings."""

    def __init__(self, weights: dict[str, float], threshold: float = 0.5) -> None:
        self.weights, self.threshold = dict(weights), float(threshold)
        self._words: dict[str, float] = {}
        self._pairs: dict[tuple[str, ...], float] = {}
        for f, w in weights.items():
            if f.startswith("#"):
                continue
            if " " in f:
                self._pairs[tuple(f.split(" "))] = w
            else:
                self._words[f] = w
        # The vocabulary the unknown-share feature is measured against: every word the model knows.
        self.vocabulary = frozenset(self._words) | frozenset(w for pair in self._pairs for w in pair)
        self._known = {w: True for w in self.vocabulary}
        self._bias = weights.get("#bias", 0.0)
        self._length = tuple(weights.get(f"#len{i}", 0.0) for i in range(len(LENGTH_BUCKETS) + 1))
        self._unknown = tuple(weights.get(f"#unknown{i}", 0.0) for i in range(len(UNKNOWN_BUCKETS) + 1))
        self._flags = tuple(weights.get(f, 0.0) for f in ("#negated_first", "#negated_last", "#list"))
        self._cues = {f[5:]: w for f, w in weights.items() if f.startswith("#cue:")}

    def logit(self, scan: str, cues: tuple[str, ...]) -> float:
        """The log-odds that a person reads the answer as a refusal (map/sum keep the loops in C: this runs on
        every answer of a build)."""
        words = _WORD.findall(scan)
        length, unknown, *flags = _structure(scan, len(words), sum(map(self._known.__contains__, words)))
        return (
            sum(map(self._words.get, set(words), repeat(0.0)))
            + sum(map(self._pairs.get, set(zip(words, words[1:])), repeat(0.0)))
            + sum(w for w, on in zip(self._flags, flags) if on)
            + sum(self._cues.get(c, 0.0) for c in cues)
            + self._bias + self._length[length] + self._unknown[unknown]
        )

    def probability(self, scan: str, cues: tuple[str, ...]) -> float:
        z = self.logit(scan, cues)
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def load(path: Path = WEIGHTS_FILE) -> Model:
    """The model in a weights file written by `python -m ascl_data.judge.train`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Model(data["weights"], data["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"refusal model weights {path}: unreadable ({exc}); rerun python -m ascl_data.judge.train")\
            from None


def held_out_accuracy(manifest: Path = MANIFEST_FILE) -> dict[str, float]:
    """{real source: the shipped judge's accuracy on it, refitted without it} as the training run recorded it (the
    figure a dataset card quotes; empty if the manifest has none)."""
    try:
        return dict(json.loads(Path(manifest).read_text(encoding="utf-8")).get("held_out_accuracy") or {})
    except (OSError, ValueError):
        return {}


_DEFAULT: Model | None = None


def default_model() -> Model:
    """The shipped model, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load()
    return _DEFAULT
