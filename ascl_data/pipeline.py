"""The build: recipe -> sources -> splits -> generator x teacher x rule tool -> judge -> shards, stats, card.

Resume: the prompt stream is deterministic for a seed, it is cut into fixed chunks of `output.shard_size` items,
and each chunk ends with its shards written atomically and then a marker. A build killed at any point and run
again skips chunks with a marker, replays the rest through the persistent request cache (finished teacher calls
are hits, never repeated), and so writes the same dataset, byte for byte.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ascl_data import __version__
from ascl_data.backends.base import Backend
from ascl_data.errors import InputError, Problem
from ascl_data.recipe import Recipe
from ascl_data.schemas import PromptRecord, Rejection, Trace
from ascl_data.writer import STATE_DIR, DatasetWriter, atomic_write_bytes

SPLIT_NAMES = ("sft", "rl", "eval")


# --------------------------------------------------------------------------- splits and generators


def _unit(seed: int, key: str, salt: str) -> float:
    """A uniform number in [0, 1) from a prompt id: assignment that does not depend on the process."""
    return xxhash.xxh64_intdigest(f"{salt}:{key}".encode(), seed) / 2**64


class Splitter:
    """Assigns prompts to sft / rl / eval by seeded hash. With counts, a full split closes, and `done` turns true
    when every split is full (the stream then stops)."""

    def __init__(self, recipe: Recipe):
        self.seed = recipe.seed
        self.by_count = recipe.splits.by_count
        self.sizes = recipe.splits.sizes()
        self.filled: Counter[str] = Counter()

    @property
    def done(self) -> bool:
        return self.by_count and all(self.filled[s] >= self.sizes[s] for s in SPLIT_NAMES)

    def assign(self, record: PromptRecord) -> str | None:
        if self.by_count:
            open_ = [s for s in SPLIT_NAMES if self.filled[s] < self.sizes[s]]
            if not open_:
                return None
            weights = [self.sizes[s] for s in open_]
        else:
            open_, weights = list(SPLIT_NAMES), [self.sizes[s] for s in SPLIT_NAMES]
        u = _unit(self.seed, record.id, "split") * sum(weights)
        for split, w in zip(open_, weights):
            if u < w:
                break
            u -= w
        self.filled[split] += 1
        return split


def pick_generator(recipe: Recipe, record: PromptRecord) -> int:
    weights = [g.weight for g in recipe.generators]
    u = _unit(recipe.seed, record.id, "generator") * sum(weights)
    for i, w in enumerate(weights):
        if u < w:
            return i
        u -= w
    return len(weights) - 1


# --------------------------------------------------------------------------- results


@dataclass
class BuildSummary:
    prompts_in: int = 0
    sft: int = 0
    rl: int = 0
    eval: int = 0
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    chunks_resumed: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.sft + self.rl + self.eval

    def add_chunk(self, counts: dict[str, Any]) -> None:
        self.prompts_in += counts["prompts_in"]
        self.sft += counts["sft"]
        self.rl += counts["rl"]
        self.eval += counts["eval"]
        self.rejected += counts["rejects"]
        self.rejected_by_reason.update(counts["reasons"])
        self.prompt_tokens += counts["prompt_tokens"]
        self.completion_tokens += counts["completion_tokens"]

    def for_card(self) -> dict[str, int]:
        return {"prompts_in": self.prompts_in, "accepted": self.accepted, "sft": self.sft, "rl": self.rl,
                "eval": self.eval, "rejected": self.rejected}


@dataclass
class BuildResult:
    out_dir: Path
    summary: BuildSummary
    files: dict[str, list[str]]
    stats: dict[str, Any]


# --------------------------------------------------------------------------- the build


class Build:
    """One run of a recipe. `run()` checks everything, then streams; see the module docstring for resume."""

    def __init__(self, recipe: Recipe, *, backend: Backend | None = None, overwrite: bool = False,
                 console: Console | None = None, progress: bool = True, repo_id: str | None = None):
        self.recipe = recipe
        self.out = Path(recipe.output.dir)
        self.state = self.out / STATE_DIR
        self._backend = backend
        self.overwrite = overwrite
        self.console = console or Console(stderr=True)
        self.show_progress = progress
        self.repo_id = repo_id

    # -- checks before any teacher call ---------------------------------------
    def prepare(self, check_output: bool = True) -> None:
        from ascl_data.generators import get_generator
        from ascl_data.rule_tool import RuleTool
        from ascl_data.rulebook import load_ruleset
        from ascl_data.sources import preflight

        r = self.recipe
        self.ruleset = load_ruleset(r.ruleset)
        self.rule_tool = RuleTool(self.ruleset)
        self.generators = []
        problems: list[Problem] = []
        for i, g in enumerate(r.generators):
            try:
                cls = get_generator(g.name)
                self.generators.append(cls(self.rule_tool, max_turns=g.max_turns, max_tool_calls=g.max_tool_calls,
                                           **g.options))
            except InputError as exc:
                problems.extend(Problem(p.where, f"generators.{i}.{p.field}".rstrip("."), p.message) for p in exc.problems)
        if problems:
            raise InputError("recipe generators", problems)
        self.sources = preflight(r)
        if check_output:
            self._check_output()

    def _check_output(self) -> None:
        marker = self.state / "build.json"
        fingerprint = self.recipe.fingerprint()
        if self.out.exists() and any(self.out.iterdir()):
            if marker.is_file():
                previous = json.loads(marker.read_text())
                if previous.get("recipe_hash") != fingerprint:
                    if not self.overwrite:
                        raise InputError("output", [Problem(
                            str(self.out), "output.dir",
                            f"holds a build of another recipe (hash {previous.get('recipe_hash')}, this one is "
                            f"{fingerprint}); pass --overwrite to replace it (the teacher cache is kept)")])
                    self._clear_outputs()
            elif not self.overwrite:
                raise InputError("output", [Problem(str(self.out), "output.dir",
                                                    "exists, is not empty and was not made by ascl-data build; "
                                                    "choose another folder or pass --overwrite")])
            else:
                self._clear_outputs()
        elif self.overwrite:
            self._clear_outputs()
        payload = {"recipe_hash": fingerprint, "recipe": self.recipe.name, "package_version": __version__}
        atomic_write_bytes(marker, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())

    def _clear_outputs(self) -> None:
        for name in ("data", "rejects", "stats", "README.md", f"{STATE_DIR}/chunks", f"{STATE_DIR}/build.json"):
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def make_backend(self) -> Backend:
        from ascl_data.backends import make_backend
        from ascl_data.cache import CachedBackend, RequestCache

        t = self.recipe.teacher
        if self._backend is None:
            kwargs = dict(t.settings)
            if t.model is not None:
                kwargs["model"] = t.model
            if t.api_key_env is not None and t.backend == "openai":  # in-process backends need no key
                kwargs["api_key_env"] = t.api_key_env
            try:
                inner = make_backend(t.backend, **kwargs)
            except TypeError as exc:
                raise InputError("recipe teacher", [Problem("teacher", "settings", str(exc))]) from None
        else:
            inner = self._backend
        cache_dir = Path(t.cache_dir) if t.cache_dir else self.state / "cache"
        return CachedBackend(inner, RequestCache(cache_dir / "requests.sqlite"))

    def make_judge(self, cache: Any) -> Any:
        """The judge; a model judge's backend goes through the same request cache as the teacher."""
        from ascl_data.backends import make_backend
        from ascl_data.cache import CachedBackend
        from ascl_data.judge import Judge, ModelJudge

        cfg = self.recipe.judge
        model_judge = None
        if cfg.model_judge and cfg.backend:
            inner = make_backend(cfg.backend, **cfg.backend_settings)
            model_judge = ModelJudge(CachedBackend(inner, cache), cfg.rubric)
            model_judge.params = model_judge.params.model_copy(update={"max_tokens": cfg.max_tokens})
        return Judge(cfg, model_judge=model_judge)

    # -- streaming ---------------------------------------------------------------
    def _chunks(self) -> Iterator[list[tuple[PromptRecord | Rejection, str | None]]]:
        from ascl_data.sources import prompt_stream

        splitter = self.splitter = Splitter(self.recipe)
        stream = prompt_stream(self.recipe, self.sources)

        def limited() -> Iterator[tuple[PromptRecord | Rejection, str | None]]:
            for item in stream:
                if splitter.done:
                    return
                yield item, (splitter.assign(item) if isinstance(item, PromptRecord) else None)

        it = limited()
        while True:
            chunk = list(itertools.islice(it, self.recipe.output.shard_size))
            if not chunk:
                return
            yield chunk

    async def _process_chunk(self, chunk: list[tuple[PromptRecord | Rejection, str | None]], backend: Backend, judge: Any,
                             progress: Progress | None, task: Any) -> tuple[list[Trace], list[PromptRecord],
                                                                            list[PromptRecord], list[Rejection]]:
        r = self.recipe
        rl: list[PromptRecord] = []
        ev: list[PromptRecord] = []
        # every item keeps its place: rejections of the chunk are written in stream order
        outcome: dict[int, Trace | Rejection] = {}
        by_gen: dict[int, list[tuple[int, PromptRecord]]] = {}
        for pos, (item, split) in enumerate(chunk):
            if isinstance(item, Rejection):
                outcome[pos] = item
                continue
            if split == "rl":
                rl.append(item)
            elif split == "eval":
                ev.append(item)
            else:
                by_gen.setdefault(pick_generator(r, item), []).append((pos, item))
        if progress is not None:
            progress.advance(task, len(chunk) - sum(len(v) for v in by_gen.values()))
        params = r.teacher.sampling
        step = r.teacher.batch_size
        for gi in sorted(by_gen):
            gen = self.generators[gi]
            items = by_gen[gi]
            for start in range(0, len(items), step):
                batch = items[start : start + step]
                results = await gen.generate([rec for _, rec in batch], backend, params)
                if len(results) != len(batch):
                    raise RuntimeError(f"generator {gen.name} returned {len(results)} results for {len(batch)} prompts")
                done = [(pos, rec, res) for (pos, rec), res in zip(batch, results) if isinstance(res, Trace)]
                verdicts = await judge.judge_batch([(rec, res) for _, rec, res in done])
                for (pos, _, res), (verdict, judged, rejection) in zip(done, verdicts):
                    outcome[pos] = rejection if rejection is not None else res.model_copy(
                        update={"verdict": verdict, "judge": judged})
                for (pos, _), res in zip(batch, results):
                    if isinstance(res, Rejection):
                        outcome[pos] = res
                if progress is not None:
                    progress.advance(task, len(batch))
                    self._live[0] += sum(isinstance(outcome[p], Trace) for p, _ in batch)
                    self._live[1] += sum(isinstance(outcome[p], Rejection) for p, _ in batch)
                    progress.update(task, description=self._describe())
        traces = [outcome[p] for p in sorted(outcome) if isinstance(outcome[p], Trace)]
        rejections = [outcome[p] for p in sorted(outcome) if isinstance(outcome[p], Rejection)]
        return traces, rl, ev, rejections  # type: ignore[return-value]

    def _describe(self) -> str:
        return f"[bold]building[/bold] traces {self._live[0]} rejected {self._live[1]}"

    async def _run_async(self) -> BuildSummary:
        writer = self.writer = DatasetWriter(self.out, think_inline=self.recipe.output.think_inline)
        summary = BuildSummary()
        self._live = [0, 0]
        backend = judge = None
        total = None
        if self.recipe.splits.by_count:
            total = int(sum(self.recipe.splits.sizes().values()))
        if self.recipe.mix.max_prompts:
            total = min(total or self.recipe.mix.max_prompts, self.recipe.mix.max_prompts)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("[cyan]{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=self.console, disable=not self.show_progress)
        n_chunks = 0
        with progress:
            task = progress.add_task(self._describe(), total=total, rate="")
            started = time.perf_counter()
            try:
                for index, chunk in enumerate(self._chunks()):
                    n_chunks = index + 1
                    marker = self.state / "chunks" / f"{index:05d}.json"
                    if marker.is_file():
                        counts = json.loads(marker.read_text())
                        summary.chunks_resumed += 1
                        progress.advance(task, len(chunk))
                    else:
                        if backend is None:
                            backend = self.make_backend()
                            judge = self.make_judge(backend.cache)
                        traces, rl, ev, rejections = await self._process_chunk(chunk, backend, judge, progress, task)
                        written = writer.write_chunk(index, traces, rl, ev, rejections)
                        counts = {
                            "prompts_in": len(chunk),
                            **written,
                            "reasons": dict(Counter(f"{x.stage}/{x.reason}" for x in rejections)),
                            "prompt_tokens": sum(t.prompt_tokens for t in traces),
                            "completion_tokens": sum(t.completion_tokens for t in traces),
                        }
                        if counts["prompts_in"] != written["sft"] + written["rl"] + written["eval"] + written["rejects"]:
                            raise RuntimeError(f"chunk {index}: prompts in != accepted + rejected ({counts})")
                        atomic_write_bytes(marker, json.dumps(counts, sort_keys=True).encode())
                    summary.add_chunk(counts)
                    self._live = [summary.sft, summary.rejected]
                    elapsed = time.perf_counter() - started
                    progress.update(task, description=self._describe(),
                                    rate=f"{summary.prompts_in / elapsed:.2f} prompts/s" if elapsed > 0 else "")
            finally:
                if backend is not None:
                    summary.cache_hits, summary.cache_misses = backend.hits, backend.misses
                    await backend.aclose()
        self.files = writer.finalize(n_chunks)
        summary.seconds = time.perf_counter() - started
        run = {"prompts_in": summary.prompts_in, "cache_hits": summary.cache_hits,
               "cache_misses": summary.cache_misses, "chunks_resumed": summary.chunks_resumed}
        with open(self.state / "runs.jsonl", "a", encoding="utf-8") as fh:  # an audit log, never uploaded
            fh.write(json.dumps(run, sort_keys=True) + "\n")
        return summary

    def run(self) -> BuildResult:
        from ascl_data.card import render_card, write_card
        from ascl_data.stats import compute_stats, print_stats, write_stats

        self.prepare()
        summary = asyncio.run(self._run_async())
        stats = compute_stats(self.out, self.files)
        plots = write_stats(self.out, stats, plots=self.recipe.output.plots)
        if self.show_progress:
            print_stats(stats, self.console)
        card = render_card(recipe=self.recipe, files=self.files, stats=stats, summary=summary.for_card(),
                           sources=[s.info(resolve_revision=True) for s in self.sources], ruleset=self.ruleset,
                           teacher_model=self._teacher_model(), plots=plots, repo_id=self.repo_id)
        write_card(self.out, card)
        return BuildResult(self.out, summary, self.files, stats)

    def _teacher_model(self) -> str:
        t = self.recipe.teacher
        if self._backend is not None:
            return self._backend.model or self._backend.name
        return t.model or ("SmolLM2-135M-Instruct (embedded)" if t.backend == "transformers" else "")


def build(recipe: Recipe, **kwargs: Any) -> BuildResult:
    """Run a recipe; see `Build`."""
    return Build(recipe, **kwargs).run()


def print_summary(summary: BuildSummary, console: Console) -> None:
    from rich.table import Table

    table = Table(title="Build summary", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("n", justify="right")
    table.add_row("prompts in", str(summary.prompts_in))
    table.add_row("accepted", f"{summary.accepted} (sft {summary.sft}, rl {summary.rl}, eval {summary.eval})")
    table.add_row("rejected", str(summary.rejected))
    for reason, n in sorted(summary.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"  {reason}", str(n))
    table.add_row("tokens (prompt / completion)", f"{summary.prompt_tokens} / {summary.completion_tokens}")
    table.add_row("teacher cache (hits / misses)", f"{summary.cache_hits} / {summary.cache_misses}")
    if summary.chunks_resumed:
        table.add_row("chunks resumed", str(summary.chunks_resumed))
    table.add_row("time", f"{summary.seconds:.1f}s")
    console.print(table)
