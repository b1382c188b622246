"""The plan of a build: which prompts, in which split, by which generator, cut into which chunks. Everything here
is a pure function of the recipe's seed and the prompt ids, so a resumed build plans exactly the same work."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import xxhash

from ascl_data.recipe import Recipe
from ascl_data.schemas import SPLITS, PromptRecord, Rejection, Split


def weighted_pick(seed: int, key: str, salt: str, weights: Sequence[float]) -> int:
    """The index of one weight, drawn with probability proportional to it by a seeded hash of `key`: the same
    answer in every process and on every run."""
    u = xxhash.xxh64_intdigest(f"{salt}:{key}".encode(), seed) / 2**64 * sum(weights)
    for i, w in enumerate(weights):
        if u < w:
            return i
        u -= w
    return len(weights) - 1


class Splitter:
    """Assigns prompts to sft / rl / eval. With counts, a full split closes, and `done` turns true when every split
    is full (the stream then stops)."""

    def __init__(self, recipe: Recipe):
        self.seed = recipe.seed
        self.by_count = recipe.splits.by_count
        self.sizes = recipe.splits.sizes()
        self.filled: Counter[str] = Counter()

    @property
    def done(self) -> bool:
        return self.by_count and all(self.filled[s] >= self.sizes[s] for s in SPLITS)

    def assign(self, record: PromptRecord) -> Split:
        open_ = [s for s in SPLITS if not self.by_count or self.filled[s] < self.sizes[s]]
        split = open_[weighted_pick(self.seed, record.id, "split", [self.sizes[s] for s in open_])]
        self.filled[split] += 1
        return split


@dataclass(frozen=True)
class Item:
    """One entry of the prompt stream with its place in the plan: a record with its split (and, for `sft`, the
    index of its generator in the recipe), or a rejection the sources made."""

    entry: PromptRecord | Rejection
    split: Split | None = None
    generator: int | None = None


@dataclass(frozen=True)
class Chunk:
    """`output.shard_size` consecutive items: the unit that is written and committed."""

    index: int
    items: list[Item]


def plan_items(recipe: Recipe, stream: Iterable[PromptRecord | Rejection]) -> Iterator[Item]:
    """Each entry of the stream with its split and generator; stops when every counted split is full."""
    splitter = Splitter(recipe)
    weights = [g.weight for g in recipe.generators]
    for entry in stream:
        if splitter.done:
            return
        if isinstance(entry, Rejection):
            yield Item(entry)
            continue
        split = splitter.assign(entry)
        generator = weighted_pick(recipe.seed, entry.id, "generator", weights) if split == "sft" else None
        yield Item(entry, split, generator)


def chunked(items: Iterable[Item], size: int) -> Iterator[Chunk]:
    it = iter(items)
    for index in itertools.count():
        batch = list(itertools.islice(it, size))
        if not batch:
            return
        yield Chunk(index, batch)


def expected_total(recipe: Recipe) -> int | None:
    """How many prompts the build will see, where the recipe says (for the progress bar)."""
    total = int(sum(recipe.splits.sizes().values())) if recipe.splits.by_count else None
    if recipe.mix.max_prompts:
        total = min(total or recipe.mix.max_prompts, recipe.mix.max_prompts)
    return total
