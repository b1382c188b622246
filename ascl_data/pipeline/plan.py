"""The plan of a build: which prompts, in which split, by which generator, cut into which chunks. Everything here
is a pure function of the recipe's seed and the prompt ids, so a resumed build plans exactly the same work."""

from __future__ import annotations

import asyncio
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


class TargetGate:
    """Sends an `sft` prompt to the teacher only while it can still be needed for `splits.sft.accepted`: while the
    accepted traces plus the prompts still with the teacher fall short of the target. Otherwise it waits for
    one of those to finish; once the target is met, every later `sft` prompt is not needed (never sent, not
    counted). So the prompts sent are exactly the stream's sft prompts up to the one that made the target,
    whatever the timing, and a resumed build sends the same ones. Near the target fewer prompts are in flight."""

    def __init__(self, target: int):
        self.target = target
        self.accepted = 0  # finished prompts that became traces
        self.pending = 0  # admitted, not finished
        self.not_needed = 0  # sft prompts the plan drew after the target was met
        self._changed: asyncio.Event | None = None  # made in the event loop, at the first wait
        self._replay: list[bool] = []
        self.stopped = False

    @property
    def closed(self) -> bool:
        """True once a prompt was not needed: the plan then assigns no more prompts to `sft`."""
        return self.not_needed > 0

    @property
    def met(self) -> bool:
        return self.accepted >= self.target

    async def admit(self) -> bool:
        """Whether the next sft prompt goes to the teacher (True, counted as pending) or is not needed (False)."""
        if self._replay:
            admitted = self._replay.pop(0)
            self.pending += admitted
            self.not_needed += not admitted
            return admitted
        while not (self.met or self.stopped or self.accepted + self.pending < self.target):
            self._changed = self._changed or asyncio.Event()
            self._changed.clear()
            await self._changed.wait()
        if self.stopped:
            return False
        if self.met:
            self.not_needed += 1
            return False
        self.pending += 1
        return True

    def finished(self, accepted: bool) -> None:
        """An admitted prompt ended as a trace (`accepted`), a rejection, or a fatal error."""
        self.pending -= 1
        self.accepted += accepted
        if self._changed is not None:
            self._changed.set()

    def stop(self) -> None:
        """A prompt failed fatally: the build is ending, so admit nothing more (and wake a waiting admit)."""
        self.stopped = True
        if self._changed is not None:
            self._changed.set()

    def committed(self, sft: int, not_needed: int) -> None:
        """A chunk committed by an earlier run: its traces count toward the target, its not-needed prompts close sft."""
        self.accepted += sft
        self.not_needed += not_needed

    def replay(self, sent: int, not_needed: int) -> None:
        """The next `sent + not_needed` decisions are those of the chunk's first run (`--retry-failed` runs it again
        with the same prompts sent, so only its failed requests go to the teacher)."""
        self._replay = [True] * sent + [False] * not_needed


class Splitter:
    """Assigns prompts to sft / rl / eval. With counts, a full split closes, and `done` turns true when every split
    is full (the stream then stops). With a target for sft, sft closes when the gate says so."""

    def __init__(self, recipe: Recipe, gate: TargetGate | None = None):
        self.seed = recipe.seed
        self.by_count = recipe.splits.by_count
        self.sizes = recipe.splits.sizes()
        self.gate = gate
        self.filled: Counter[str] = Counter()

    def _open(self, split: str) -> bool:
        if split == "sft" and self.gate is not None:
            return not self.gate.closed
        return not self.by_count or self.filled[split] < self.sizes[split]

    @property
    def done(self) -> bool:
        return not any(self._open(s) for s in SPLITS)

    def assign(self, record: PromptRecord) -> Split:
        open_ = [s for s in SPLITS if self._open(s)]
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


def plan_items(recipe: Recipe, stream: Iterable[PromptRecord | Rejection],
               gate: TargetGate | None = None) -> Iterator[Item]:
    """Each entry of the stream with its split and generator; stops when every counted split is full (with a
    target: and the gate has closed sft). The gate changes only while a chunk's prompts are admitted, never while
    a chunk is drawn, so the chunks are the same on every run."""
    splitter = Splitter(recipe, gate)
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
    counted = recipe.splits.by_count and recipe.splits.target is None
    total = int(sum(recipe.splits.sizes().values())) if counted else None
    if recipe.mix.max_prompts:
        total = min(total or recipe.mix.max_prompts, recipe.mix.max_prompts)
    return total
