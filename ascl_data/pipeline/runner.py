"""Running the plan: rl/eval prompts pass through, sft prompts go through their generator (teacher, rule tool) and
the judge, each on its own, and every item of a chunk ends as a row or a rejection, in stream order."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ascl_data.backends.base import SamplingParams
from ascl_data.cache import CachedBackend
from ascl_data.pipeline.plan import Chunk, TargetGate
from ascl_data.pipeline.progress import BuildListener
from ascl_data.pipeline.quality import QualityCheck
from ascl_data.generators.base import Generator
from ascl_data.judge import Judge
from ascl_data.schemas import PromptRecord, Rejection, Trace


#: The default `teacher.max_in_flight`, per request the backend serves at once. Each admitted conversation has at
#: most one request out and the backend still sends no more than its concurrency, so the extra conversations wait
#: in the client: one that is between turns (its tool call, its judge, a new prompt starting) leaves no request
#: slot idle, and the last conversations' turns do not form a tail (benchmarks/admission_model.py).
ADMITTED_PER_REQUEST_SLOT = 4


@dataclass(frozen=True)
class Stages:
    """What turns a prompt into a trace: the recipe's generators (by index), the cached teacher, the judge, the
    quality check, and how many conversations may be with the teacher at once (each with at most one request in flight)."""

    generators: list[Generator]
    backend: CachedBackend
    judge: Judge
    params: SamplingParams
    max_in_flight: int
    quality: QualityCheck | None = None  # the quality fields and filters, after the judge


TRANSIENT_REASONS = frozenset({"backend_error", "judge_error"})  # what `--retry-failed` sends again


@dataclass
class ChunkCounts:
    """What a committed chunk holds; stored in its marker, so a resumed build adds it without reading shards."""

    prompts_in: int = 0
    sft: int = 0
    rl: int = 0
    eval: int = 0
    rejects: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # "stage/reason" -> n
    # teacher usage of every prompt of the chunk, accepted or rejected, over all attempts
    prompt_tokens: int = 0
    completion_tokens: int = 0
    teacher_calls: int = 0
    not_needed: int = 0  # sft prompts drawn after `splits.sft.accepted` was met: not sent, not in prompts_in

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @property
    def transient(self) -> int:
        """Rejections a healthy teacher or judge could turn around (a failed request, a judge outage)."""
        return sum(n for reason, n in self.reasons.items() if reason.rsplit("/", 1)[-1] in TRANSIENT_REASONS)

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
    not_needed: int = 0

    def counts(self, items: int) -> ChunkCounts:
        prompts_in = items - self.not_needed
        counts = ChunkCounts(
            prompts_in=prompts_in, sft=len(self.traces), rl=len(self.rl), eval=len(self.eval),
            rejects=len(self.rejections), reasons=dict(Counter(f"{x.stage}/{x.reason}" for x in self.rejections)),
            prompt_tokens=sum(x.prompt_tokens for x in [*self.traces, *self.rejections]),
            completion_tokens=sum(x.completion_tokens for x in [*self.traces, *self.rejections]),
            teacher_calls=sum(x.teacher_calls for x in [*self.traces, *self.rejections]), not_needed=self.not_needed,
        )
        if prompts_in != counts.sft + counts.rl + counts.eval + counts.rejects:
            raise RuntimeError(f"prompts in != accepted + rejected ({counts})")
        return counts


class Scheduler:
    """Runs the prompts of the stream with no batch or turn barrier. Each conversation advances on its own (teacher
    turn, tool calls, next turn, judge) as soon as its previous step is done; at most `max_in_flight` conversations
    are with the teacher at once (one request each at most; the backend caps the requests it sends at its own
    concurrency), and a new prompt is admitted, in stream order, as soon as one of them is done, whatever chunk
    either belongs to. A chunk's result is ready when all its prompts are."""

    def __init__(self, stages: Stages, listener: BuildListener, gate: TargetGate | None = None):
        self.stages = stages
        self.listener = listener
        self.gate = gate  # with `splits.sft.accepted`: which sft prompts are still needed
        self._slots = asyncio.Semaphore(stages.max_in_flight)
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, chunk: Chunk) -> asyncio.Task[ChunkResult]:
        """Admit the chunk's prompts (waiting for free slots); returns the task that gathers its result."""
        parts: list[asyncio.Future[Trace | Rejection | PromptRecord | None]] = []
        for item in chunk.items:
            if isinstance(item.entry, PromptRecord) and item.split == "sft" and item.generator is not None:
                if self.gate is not None and not await self.gate.admit():
                    parts.append(self._resolved(None))  # not needed: never sent, not counted
                    continue
                await self._slots.acquire()
                parts.append(self._spawn(self._conversation(item.entry, self.stages.generators[item.generator])))
            else:
                self.listener.prompts_done(1, 0, int(isinstance(item.entry, PromptRecord)),
                                           int(isinstance(item.entry, Rejection)))
                parts.append(self._resolved(item.entry))
        return self._spawn(self._gather(chunk, parts))

    @staticmethod
    def _resolved(outcome: Trace | Rejection | PromptRecord | None) -> asyncio.Future[Any]:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(outcome)
        return done

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """A task is done: forget it, and mark its exception seen. A fatal error fails every chunk still running;
        the first reaches the build through the chunk being committed, and the chunks after it are never awaited,
        so asyncio would print each one's traceback ("Task exception was never retrieved") after the message."""
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()

    async def _conversation(self, record: PromptRecord, generator: Generator) -> Trace | Rejection:
        """`_attempts`, telling the target gate (if any) how the prompt ended; a fatal error stops the gate, so no
        further prompt is sent while the build fails."""
        try:
            result = await self._attempts(record, generator)
        except BaseException:
            if self.gate is not None:
                self.gate.stop()
            raise
        if self.gate is not None:
            self.gate.finished(isinstance(result, Trace))
        return result

    async def _attempts(self, record: PromptRecord, generator: Generator) -> Trace | Rejection:
        """Up to `generator.attempts` sampled answers, until the judge accepts one; the row carries the teacher
        usage of all attempts, and a rejection every attempt's reason. The slot is held while the teacher works,
        so a retry queues like a new prompt."""
        reasons: list[str] = []
        calls = prompt_tokens = completion_tokens = 0
        for attempt in range(generator.attempts):
            if attempt:
                await self._slots.acquire()
            try:
                result = await generator.generate_one(record, self.stages.backend, self.stages.params, attempt)
            finally:
                self._slots.release()  # the teacher is done with it: the next prompt may start
            calls += result.teacher_calls
            prompt_tokens += result.prompt_tokens
            completion_tokens += result.completion_tokens
            usage = {"teacher_calls": calls, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
            if isinstance(result, Trace):
                ((verdict, judged, rejection),) = await self.stages.judge.judge_batch([(record, result)])
                if rejection is None:
                    result = result.model_copy(update={"verdict": verdict, "judge": judged, "attempts": attempt + 1,
                                                       **usage})
                    result = await self.stages.quality.check(result) if self.stages.quality else result
                    if isinstance(result, Trace):
                        break
                else:
                    result = self.stages.quality.annotate(rejection, result) if self.stages.quality else rejection
            reasons.append(f"{result.stage}/{result.reason}: {result.detail}")
            detail = result.detail if len(reasons) == 1 else "; ".join(
                f"attempt {k + 1}: {r}" for k, r in enumerate(reasons))
            result = result.model_copy(update={"attempts": len(reasons), "attempt_reasons": list(reasons),
                                                "detail": detail, **usage})
        self.listener.prompts_done(1, int(isinstance(result, Trace)), 0, int(isinstance(result, Rejection)))
        return result

    @staticmethod
    async def _gather(chunk: Chunk,
                      parts: list[asyncio.Future[Trace | Rejection | PromptRecord | None]]) -> ChunkResult:
        result = ChunkResult()
        for item, outcome in zip(chunk.items, await asyncio.gather(*parts)):
            if outcome is None:
                result.not_needed += 1
            elif isinstance(outcome, Trace):
                result.traces.append(outcome)
            elif isinstance(outcome, Rejection):
                result.rejections.append(outcome)
            else:
                (result.rl if item.split == "rl" else result.eval).append(outcome)
        return result

    async def cancel(self) -> None:
        """Stop every conversation still running (a fatal error, or the build was interrupted)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
