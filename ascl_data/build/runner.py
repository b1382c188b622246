"""Running one chunk of the plan: rl/eval prompts pass through, sft prompts go through their generator (teacher,
rule tool) and the judge, and every item ends as a row or a rejection, in stream order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ascl_data.backends.base import Backend, SamplingParams
from ascl_data.build.plan import Chunk
from ascl_data.build.progress import BuildListener
from ascl_data.generators.base import Generator
from ascl_data.judge import Judge
from ascl_data.schemas import PromptRecord, Rejection, Trace


@dataclass(frozen=True)
class Stages:
    """What turns a prompt into a trace: the recipe's generators (by index), the cached teacher, the judge."""

    generators: list[Generator]
    backend: Backend
    judge: Judge
    params: SamplingParams
    batch_size: int


@dataclass
class ChunkCounts:
    """What a committed chunk holds; stored in its marker, so a resumed build adds it without reading shards."""

    prompts_in: int = 0
    sft: int = 0
    rl: int = 0
    eval: int = 0
    rejects: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # "stage/reason" -> n
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkCounts:
        return cls(**data)


@dataclass
class ChunkResult:
    """A chunk's outcome: rows per split and rejections, each in stream order."""

    traces: list[Trace] = field(default_factory=list)
    rl: list[PromptRecord] = field(default_factory=list)
    eval: list[PromptRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def counts(self, prompts_in: int) -> ChunkCounts:
        counts = ChunkCounts(
            prompts_in=prompts_in, sft=len(self.traces), rl=len(self.rl), eval=len(self.eval),
            rejects=len(self.rejections), reasons=dict(Counter(f"{x.stage}/{x.reason}" for x in self.rejections)),
            prompt_tokens=sum(t.prompt_tokens for t in self.traces),
            completion_tokens=sum(t.completion_tokens for t in self.traces),
        )
        if prompts_in != counts.sft + counts.rl + counts.eval + counts.rejects:
            raise RuntimeError(f"prompts in != accepted + rejected ({counts})")
        return counts


async def run_chunk(chunk: Chunk, stages: Stages, listener: BuildListener) -> ChunkResult:
    """Every item of the chunk to a row or a rejection; the teacher sees `batch_size` prompts of one generator at
    a time."""
    outcome: dict[int, Trace | Rejection] = {}
    passed: dict[int, PromptRecord] = {}
    by_generator: dict[int, list[tuple[int, PromptRecord]]] = {}
    for pos, item in enumerate(chunk.items):
        if isinstance(item.entry, Rejection):
            outcome[pos] = item.entry
        elif item.split == "sft" and item.generator is not None:
            by_generator.setdefault(item.generator, []).append((pos, item.entry))
        else:
            passed[pos] = item.entry
    listener.prompts_done(len(chunk.items) - sum(map(len, by_generator.values())), len(passed),
                          len(chunk.items) - len(passed) - sum(map(len, by_generator.values())))
    for gi in sorted(by_generator):
        generator, items = stages.generators[gi], by_generator[gi]
        for start in range(0, len(items), stages.batch_size):
            batch = items[start : start + stages.batch_size]
            results = await generator.generate([rec for _, rec in batch], stages.backend, stages.params)
            if len(results) != len(batch):
                raise RuntimeError(f"generator {generator.name} returned {len(results)} results for {len(batch)} prompts")
            done = [(pos, rec, res) for (pos, rec), res in zip(batch, results) if isinstance(res, Trace)]
            verdicts = await stages.judge.judge_batch([(rec, res) for _, rec, res in done])
            for (pos, _, trace), (verdict, judged, rejection) in zip(done, verdicts):
                outcome[pos] = rejection or trace.model_copy(update={"verdict": verdict, "judge": judged})
            for (pos, _), res in zip(batch, results):
                if isinstance(res, Rejection):
                    outcome[pos] = res
            accepted = sum(isinstance(outcome[pos], Trace) for pos, _ in batch)
            listener.prompts_done(len(batch), accepted, len(batch) - accepted)
    result = ChunkResult()
    for pos, item in enumerate(chunk.items):
        if pos in passed:
            (result.rl if item.split == "rl" else result.eval).append(passed[pos])
        elif isinstance(outcome[pos], Trace):
            result.traces.append(outcome[pos])  # type: ignore[arg-type]
        else:
            result.rejections.append(outcome[pos])  # type: ignore[arg-type]
    return result
