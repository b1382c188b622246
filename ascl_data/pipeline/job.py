"""The build: recipe -> sources -> plan -> generator x teacher x rule tool -> judge -> shards, stats, card.

Resume: the plan is a pure function of the seed, cut into chunks of `output.shard_size` items; prompts run with
no batch or turn barrier (`runner.Scheduler`), but chunks are written in stream order, each ending with its shards
written atomically and then a marker. A build killed at any point and run again skips chunks with
a marker and replays the rest through the persistent request cache (finished teacher calls are hits, never
repeated), so it writes the same dataset, byte for byte. With a target (`splits.sft.accepted`), a `TargetGate` in
the scheduler sends an sft prompt only while it can still be needed; its decisions depend on the outcomes of the
prompts before it in the stream alone, and each chunk's marker records them, so a resume decides the same way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ascl_data import __version__
from ascl_data.backends import Backend, build_backend
from ascl_data.cache import CachedBackend, RequestCache
from ascl_data.pipeline.card import render_card, write_card
from ascl_data.pipeline.layout import Layout, write_judge_config
from ascl_data.pipeline.plan import Chunk, TargetGate, chunked, expected_total, plan_items
from ascl_data.pipeline.progress import BuildListener, progress_for
from ascl_data.pipeline.quality import make_quality_check
from ascl_data.pipeline.runner import ADMITTED_PER_REQUEST_SLOT, ChunkCounts, ChunkResult, Scheduler, Stages
from ascl_data.pipeline.stats import compute_stats, consult_policies, print_stats, write_stats
from ascl_data.pipeline.summary import BuildResult, BuildSummary
from ascl_data.pipeline.writer import DatasetWriter
from ascl_data.errors import InputError, Problem
from ascl_data.generators import Generator, get_generator
from ascl_data.judge.factory import make_judge
from ascl_data.prompts import adaptive_system_prompt
from ascl_data.recipe import Recipe, TeacherConfig, TransformersTeacher
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.row_schema import ROW_SCHEMA_ID
from ascl_data.rulebook import Ruleset
from ascl_data.sources import Source, preflight, prompt_stream, source_ids


@dataclass(frozen=True)
class Checked:
    """What a recipe resolves to before any teacher call."""

    ruleset: Ruleset
    generators: list[Generator]
    sources: list[Source]


def make_teacher(config: TeacherConfig, cache_file: Path, backend: Backend | None = None) -> CachedBackend:
    """The recipe's teacher (or `backend`, given from Python) behind the persistent request cache, built from the
    teacher's typed settings as every model section is (`build_backend`). The key's environment variable goes to
    backends that take one; in-process engines need none."""
    if backend is None:
        backend = build_backend(config, role="teacher")  # an InputError names teacher.model or the setting
    return CachedBackend(backend, RequestCache(cache_file))


class Build:
    """One run of a recipe: `check()` resolves everything without a teacher call; `run()` builds."""

    def __init__(self, recipe: Recipe, *, backend: Backend | None = None, overwrite: bool = False,
                 retry_failed: bool = False, console: Console | None = None, progress: bool = True,
                 repo_id: str | None = None):
        self.recipe = recipe
        self.retry_failed = retry_failed  # run committed chunks with transient rejections again
        self.layout = Layout(Path(recipe.output.dir))
        self.backend = backend  # a teacher given from Python instead of the recipe's
        self.overwrite = overwrite
        self.console = console or Console(stderr=True)
        self.show_progress = progress
        self.repo_id = repo_id

    def check(self) -> Checked:
        """The rule book, the generators and every source, checked; raises one InputError naming each problem."""
        ruleset = load_ruleset(self.recipe.ruleset)
        rule_tool = RuleTool(ruleset)
        generators, problems = [], []
        for i, g in enumerate(self.recipe.generators):
            try:
                generators.append(get_generator(g.name)(rule_tool, max_turns=g.max_turns,
                                                        max_tool_calls=g.max_tool_calls, consult=dict(g.consult),
                                                        attempts=g.attempts, **g.options))
            except InputError as exc:
                problems += [Problem(p.where, f"generators.{i}.{p.field}".rstrip("."), p.message) for p in exc.problems]
        if problems:
            raise InputError("recipe generators", problems)
        return Checked(ruleset, generators, preflight(self.recipe))

    def run(self) -> BuildResult:
        checked = self.check()
        try:
            return self._run(checked)
        finally:
            self.layout.release()  # the folder's lock, taken by `claim`

    def _run(self, checked: Checked) -> BuildResult:
        self.layout.claim(self.recipe.fingerprint(), {"recipe": self.recipe.name, "package_version": __version__,
                                                      "row_schema": ROW_SCHEMA_ID,
                                                      "sources": source_ids(checked.sources)}, overwrite=self.overwrite)
        started = time.perf_counter()
        summary, n_chunks = asyncio.run(self._chunks(checked))
        summary.seconds = time.perf_counter() - started
        summary.prices = self.recipe.teacher.prices
        files = DatasetWriter(self.layout).finalize(n_chunks)
        self.layout.log_run(summary.for_log())
        stats = compute_stats(self.layout.root, files, policies=consult_policies(self.recipe),
                              quality=self.recipe.quality, seed=self.recipe.seed, judge=self.recipe.judge)
        stats["usage"] = summary.usage()  # summed from the chunk markers: a resumed build counts each chunk once
        if summary.target is not None:
            stats["target"] = summary.target_report()
        before = self.layout.snapshot()  # what the steps below write is recorded, so --overwrite removes it by name
        plots = write_stats(self.layout.root, stats, plots=self.recipe.output.plots)
        if self.show_progress:
            print_stats(stats, self.console)
        card = render_card(recipe=self.recipe, files=files, stats=stats, summary=summary.for_card(),
                           sources=[s.info(resolve_revision=True) for s in checked.sources], ruleset=checked.ruleset,
                           teacher_model=self._teacher_model(), teacher_adapter=self._teacher_adapter(), plots=plots,
                           repo_id=self.repo_id)
        write_card(self.layout.root, card)
        write_judge_config(self.layout.root, self.recipe.judge)
        self.layout.record_written(before)
        return BuildResult(self.layout.root, summary, files, stats)

    async def _chunks(self, checked: Checked) -> tuple[BuildSummary, int]:
        """Per chunk: skip it if committed, else start its prompts; chunks are written and committed in stream
        order as they finish, while later prompts keep the teacher busy."""
        r, summary, n_chunks = self.recipe, BuildSummary(target=self.recipe.splits.target), 0
        gate = TargetGate(r.splits.target) if r.splits.target is not None else None
        writer = DatasetWriter(self.layout, think_inline=r.output.think_inline,
                               system_prompt=adaptive_system_prompt(checked.ruleset))
        listener = progress_for(self.console) if self.show_progress else BuildListener()
        listener.started(expected_total(r))
        scheduler: Scheduler | None = None  # made at the first chunk that needs the teacher
        started: asyncio.Queue[tuple[Chunk, asyncio.Task[ChunkResult]] | None] = asyncio.Queue()

        async def commit_in_order() -> None:
            while (entry := await started.get()) is not None:
                chunk, task = entry
                result = await task
                counts = result.counts(len(chunk.items))
                writer.write_chunk(chunk.index, result.traces, result.rl, result.eval, result.rejections)
                self.layout.commit(chunk.index, counts.to_json())
                summary.add(counts)

        committer = asyncio.create_task(commit_in_order())
        try:
            for chunk in chunked(plan_items(r, prompt_stream(r, checked.sources), gate), r.output.shard_size):
                n_chunks = chunk.index + 1
                committed, damaged = self.layout.chunk_state(chunk.index)
                if damaged:
                    self.console.print(f"[yellow]warning[/yellow]: chunk {chunk.index} was committed, but {damaged}: "
                                       "the chunk is built again (its finished teacher calls come from the cache)")
                if committed is not None and self.retry_failed and ChunkCounts.from_json(committed).transient:
                    # run it again: its finished calls are cache hits (its other rows come out byte-identical);
                    # only the failed requests, which the cache never keeps, go to the teacher
                    if gate is not None:  # the same prompts as its first run, though the target may now be met
                        counts = ChunkCounts.from_json(committed)
                        gate.replay(sum(i.split == "sft" for i in chunk.items) - counts.not_needed, counts.not_needed)
                    committed = None
                if committed is not None:
                    counts = ChunkCounts.from_json(committed)
                    if gate is not None:
                        gate.committed(counts.sft, counts.not_needed)
                    summary.chunks_resumed += 1
                    summary.add(counts)
                    listener.prompts_done(counts.prompts_in, counts.sft, counts.rl + counts.eval, counts.rejects)
                    continue
                scheduler = scheduler or Scheduler(self._stages(checked), listener, gate)
                started.put_nowait((chunk, await scheduler.start(chunk)))
                if committer.done():  # a chunk failed (a fatal error): stop admitting prompts
                    break
            started.put_nowait(None)
            await committer
        finally:
            committer.cancel()
            listener.finished()
            if scheduler is not None:
                await scheduler.cancel()
                backend = scheduler.stages.backend
                summary.cache_hits, summary.cache_misses = backend.hits, backend.misses
                await backend.aclose()
        return summary, n_chunks

    def _stages(self, checked: Checked) -> Stages:
        t = self.recipe.teacher
        teacher = make_teacher(t, Path(t.cache_dir) / "requests.sqlite" if t.cache_dir else self.layout.default_cache,
                               self.backend)
        return Stages(checked.generators, teacher, make_judge(self.recipe.judge, teacher.cache), t.sampling,
                      t.max_in_flight or ADMITTED_PER_REQUEST_SLOT * teacher.inner.concurrency,
                      make_quality_check(self.recipe.quality, checked.generators[0].rule_tool, teacher.cache))

    def _teacher_adapter(self) -> str | None:
        """The seed adapter's description when the teacher is the embedded model with it merged in."""
        t = self.recipe.teacher
        if not isinstance(t, TransformersTeacher) or t.model not in (None, "embedded") or not t.settings.seed_adapter:
            return None
        from ascl_data.embedded_adapter import adapter_description

        return adapter_description()

    def _teacher_model(self) -> str:
        if self.backend is not None:
            return self.backend.model or self.backend.name
        t = self.recipe.teacher
        return t.model or ("SmolLM2-135M-Instruct (embedded)" if t.backend == "transformers" else "")
