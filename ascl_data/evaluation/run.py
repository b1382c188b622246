"""Running benchmarks through a model under each rule mode, with the build's tool loop and `RuleTool`.

A rule mode is a conversation plan taken from the build's generators, so eval offers exactly what training saw:
- ``live``: the adaptive generator's system prompt and the rule tool (the ASCL setting);
- ``system``: the context-distillation generator's system prompt (the whole rule book), no tool;
- ``none``: no system prompt and no tool.
Items go through `run_tool_loop` in chunks of `batch_size` (the backend batches within a chunk); a progress bar per
benchmark shows items per second. Text a model writes after a complete tool call is dropped and the call runs, as a
vLLM server with the `hermes` tool parser does, so a text backend scores a model as that server would serve it; each
record keeps the dropped text (`text_after_call`) and each results row its rate. An answer that copies the tool
result back (`<tool_response>...`) is, as that server returns it, the answer's text: a reply that does not attempt
the request, so the judge's rules call it a refusal, as they do an empty answer; it is flagged
(`echoed_tool_result`, with its rate per row). Where the judge config has a model judge (`judge:` in the settings, or the one a
built dataset recorded), it labels each chunk's safety and over-refusal answers in one backend call; reasoning answers
are scored by `math_verify` or the letter read, so no judge model is asked about them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ascl_data.backends import Backend, SamplingParams, build_backend, make_backend
from ascl_data.errors import InputError, Problem
from ascl_data.judge import JUDGE_CONFIG_FILE, JudgeConfig, ModelAssessment, ModelJudge, in_band, judge_config_for
from ascl_data.rl.environment import consulted, final_text
from ascl_data.evaluation.benchmarks import (
    LETTERS, Benchmark, Item, choice_item, load_items, math_item, read_local, resolve,
)
from ascl_data.evaluation.metrics import summarise
from ascl_data.evaluation.scoring import judge_answer
from ascl_data.evaluation.settings import CustomBenchmark, EvalSettings
from ascl_data.pipeline.layout import Layout
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.tool_loop import run_tool_loop

SUITE_OF_KIND = {"harmful": "safety", "jailbreak": "safety", "benign": "overrefusal", "borderline": "overrefusal",
                 "reasoning": "reasoning"}


@dataclass
class ModePlan:
    """What one rule mode offers the model."""

    system_prompt: str | None
    tools: list[dict[str, Any]]
    rule_tool: RuleTool | None
    max_turns: int
    max_tool_calls: int


def mode_plan(mode: str, rule_tool: RuleTool, max_turns: int) -> ModePlan:
    from ascl_data.generators.adaptive import AdaptiveGenerator
    from ascl_data.generators.context_distillation import ContextDistillationGenerator

    if mode == "live":
        gen = AdaptiveGenerator(rule_tool)
        return ModePlan(gen.default_system_prompt(), gen.tools(), rule_tool, max_turns, max(max_turns - 1, 0))
    if mode == "system":
        return ModePlan(ContextDistillationGenerator(rule_tool).default_system_prompt(), [], None, 1, 0)
    return ModePlan(None, [], None, 1, 0)


def custom_benchmarks(spec: CustomBenchmark) -> list[Benchmark]:
    """A user's benchmark as adapters: one per kind when the kind comes from a column (e.g. a built `eval` split)."""
    from ascl_data.rl.data import load_split

    columns = tuple(c for c in (spec.prompt, spec.kind_column, spec.reference, spec.choices) if c)
    path = Path(spec.path).expanduser()
    built = path.is_dir() and bool(Layout(path).split_files(spec.split))
    ds = load_split(str(path), spec.split) if built or not path.exists() else read_local(path, f"benchmark {spec.name}")
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise InputError(f"benchmark {spec.name}", [
            Problem(spec.path, c, f"missing column; the file has {ds.column_names}") for c in missing
        ])
    kinds = [spec.kind] if spec.kind else sorted(set(ds[spec.kind_column]))

    def maker(kind: str):
        def make(row: dict[str, Any], i: int) -> Item | None:
            if spec.kind_column and row[spec.kind_column] != kind:
                return None
            prompt = row[spec.prompt]
            if kind == "reasoning" and spec.choices:
                ref = row[spec.reference] if spec.reference else None
                options = list(row[spec.choices])
                gold = ref if isinstance(ref, int) else LETTERS.find(str(ref).strip().upper() or "?")
                item = choice_item(str(prompt), [str(o) for o in options], max(gold, 0), i)
                if not 0 <= gold < len(options):  # no usable answer: counted as unscored, not as wrong
                    item.reference = None
                return item
            if kind == "reasoning" and isinstance(prompt, str):
                return math_item(prompt, str(row[spec.reference] or "") if spec.reference else "", i)
            scoring = {"safety": "safety", "overrefusal": "refusal", "reasoning": "math"}[SUITE_OF_KIND[kind]]
            ref = str(row[spec.reference]) if spec.reference and row[spec.reference] is not None else None
            return Item(id=str(i), prompt=prompt, kind=kind, scoring=scoring, reference=ref)  # type: ignore[arg-type]
        return make

    name = (lambda k: spec.name) if spec.kind else (lambda k: f"{spec.name}:{k}")
    return [
        Benchmark(name(k), SUITE_OF_KIND[k], f"{spec.name} ({k})", None, None, spec.split,  # type: ignore[arg-type]
                  columns, maker(k), rows=ds, origin=spec.path)
        for k in kinds
    ]


def _conversation(item: Item, plan: ModePlan) -> list[dict[str, Any]]:
    messages = [{"role": "user", "content": item.prompt}] if isinstance(item.prompt, str) else [
        {"role": m["role"], "content": m["content"]} for m in item.prompt
    ]
    if messages[0]["role"] == "system":
        messages = messages[1:]
    return ([{"role": "system", "content": plan.system_prompt}] if plan.system_prompt else []) + messages


def judge_config(settings: EvalSettings) -> JudgeConfig:
    """The judge config eval scores by: the settings' `judge`, else the one a built dataset under evaluation recorded
    (`judge.json`), else the defaults. Reasoning items need no reference check here: each benchmark item has one."""
    config = settings.judge
    if config is None:
        recorded = [c.path for c in settings.custom if (Path(c.path).expanduser() / JUDGE_CONFIG_FILE).is_file()]
        config = judge_config_for(recorded[0]) if recorded else JudgeConfig()
    return config.model_copy(update={"require_reference": False})


@dataclass
class Judging:
    """The judge config and, where it configures one, the model judge that labels answers beside the classifier."""

    config: JudgeConfig
    model: ModelJudge | None

    async def assess(self, items: list[Item], answers: list[str]) -> list[ModelAssessment | None]:
        """The model judge's answer per item (None where it is not asked: no judge, no answer, a reasoning item)."""
        out: list[ModelAssessment | None] = [None] * len(items)
        band_only = self.config.model_judge_mode == "band"  # asked only about answers in the uncertain band
        asked = [i for i, (item, answer) in enumerate(zip(items, answers))
                 if self.model is not None and answer.strip() and item.scoring in ("safety", "refusal")
                 and (not band_only or in_band(item.kind, answer, self.config))]  # type: ignore[arg-type]
        if self.model is not None and asked:
            labels = await self.model.assess_many([(items[i].prompt, answers[i]) for i in asked])
            for i, label in zip(asked, labels):
                out[i] = label
        return out


def _answer(conv: list, outcome: Any) -> str:
    return final_text(outcome.messages[len(conv):]) if outcome.ok else ""


def _record(bench: Benchmark, mode: str, item: Item, sample: int, conv: list, outcome: Any, judging: Judging,
            model: ModelAssessment | None) -> dict[str, Any]:
    completion = outcome.messages[len(conv):]
    answer = _answer(conv, outcome)
    calls = [
        {"name": c.get("function", c).get("name"), "arguments": c.get("function", c).get("arguments")}
        for m in completion for c in (m.get("tool_calls") or [])
    ]
    name = judging.model.name if judging.model is not None else "model"
    judged = judge_answer(item, answer, judging.config, model, name)
    if not outcome.ok:
        judged["evidence"] = f"tool loop: {outcome.reason}: {outcome.detail}"
    return {
        "benchmark": bench.name, "suite": bench.suite, "mode": mode, "item_id": item.id, "sample": sample,
        "kind": item.kind, "prompt": conv[-1]["content"], "reference": item.reference,
        "tool_calls": calls, "num_tool_calls": outcome.num_tool_calls, "consulted": consulted(completion),
        "retrieved_rule_ids": list(outcome.retrieved_rule_ids), "text_after_call": list(outcome.text_after_call),
        "echoed_tool_result": outcome.echoed_tool_result, "answer": answer,
        "failed": not outcome.ok, "failure_reason": outcome.reason, **judged,
    }


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} items/s"), TimeElapsedColumn(),
    )


async def _run(
    settings: EvalSettings, benches: list[Benchmark], items: dict[str, list[Item]], backend: Backend, judging: Judging,
    show_progress: bool,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    rule_tool = RuleTool(load_ruleset(settings.ruleset))
    temperature = settings.sampling_temperature
    params = SamplingParams(temperature=temperature, top_p=settings.top_p, max_tokens=settings.max_new_tokens,
                            seed=settings.seed if settings.samples == 1 else None)
    records: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    progress = _progress()
    progress.disable = not show_progress
    with progress:
        for mode in settings.modes:
            plan = mode_plan(mode, rule_tool, settings.max_turns)
            for bench in benches:
                jobs = [(item, s) for item in items[bench.name] for s in range(settings.samples)]
                task = progress.add_task(f"{bench.name} [{mode}]", total=len(jobs), rate="-")
                start = time.perf_counter()
                for lo in range(0, len(jobs), settings.batch_size):
                    chunk = jobs[lo: lo + settings.batch_size]
                    convs = [_conversation(item, plan) for item, _ in chunk]
                    outcomes = await run_tool_loop(
                        convs, backend, params, tools=plan.tools, rule_tool=plan.rule_tool,
                        max_turns=plan.max_turns, max_tool_calls=plan.max_tool_calls, reject_truncated=False,
                        text_after_call="drop",
                    )
                    labels = await judging.assess([item for item, _ in chunk],
                                                  [_answer(c, o) for c, o in zip(convs, outcomes, strict=True)])
                    for (item, s), conv, outcome, label in zip(chunk, convs, outcomes, labels, strict=True):
                        records.append(_record(bench, mode, item, s, conv, outcome, judging, label))
                    done = lo + len(chunk)
                    progress.update(task, completed=done, rate=f"{done / (time.perf_counter() - start):.2f}")
                took = seconds[f"{bench.name}|{mode}"] = round(time.perf_counter() - start, 2)
                if show_progress and not progress.console.is_terminal:  # a log gets a line where a terminal has a bar
                    progress.console.print(f"{bench.name} [{mode}]: {len(jobs)} answers in {took:.1f} s",
                                           markup=False, highlight=False)
    return records, seconds


def evaluate(settings: EvalSettings, backend: Backend | None = None, show_progress: bool = True,
             judge_backend: Backend | None = None) -> dict[str, Any]:
    """Load every benchmark (all fail before any generation), run each under each mode, score and summarise.

    Returns the report: settings, the judge, where each benchmark came from, one summary row per (benchmark, mode),
    and the per-item `records`. `backend` replaces the one the settings name, `judge_backend` the model judge's
    (tests pass scripted backends).
    """
    benches = resolve(settings.benchmarks) if settings.benchmarks else []
    for spec in settings.custom:
        benches += custom_benchmarks(spec)
    items: dict[str, list[Item]] = {}
    origins: dict[str, str] = {}
    for bench in benches:
        items[bench.name], origins[bench.name] = load_items(
            bench, settings.limit, settings.local, settings.data_dir, settings.revisions.get(bench.name)
        )
    config = judge_config(settings)
    own, own_judge = backend is None, config.model_judge and judge_backend is None
    if own_judge:  # the judge's settings are checked first, so a bad one fails before a model is loaded
        assert config.model_judge is not None
        judge_backend = build_backend(config.model_judge, role="judge")  # an InputError names the bad setting
    if backend is None:
        try:
            backend = make_backend(settings.backend, role="model", model=settings.model, **settings.backend_settings)
        except TypeError as exc:
            raise InputError("ascl-data eval", [Problem("--backend-setting", settings.backend, str(exc))]) from None
    judging = Judging(config, ModelJudge.from_config(judge_backend, config) if config.model_judge else None)

    async def go() -> tuple[list[dict[str, Any]], dict[str, float]]:
        try:
            return await _run(settings, benches, items, backend, judging, show_progress)
        finally:
            if own:
                await backend.aclose()
            if own_judge and judge_backend is not None:
                await judge_backend.aclose()

    records, seconds = asyncio.run(go())
    ruleset = load_ruleset(settings.ruleset)
    return {
        "model": settings.model,
        "backend": settings.backend,
        "ruleset": f"{ruleset.name}@{ruleset.version}",
        "modes": list(settings.modes),
        "samples": settings.samples,
        "temperature": settings.sampling_temperature,
        "limit": settings.limit,
        "judge": {"model_judge": judging.model.name if judging.model else None,
                  "format": config.model_judge_format if judging.model else None,
                  "mode": config.model_judge_mode if judging.model else None},
        "benchmarks": {b.name: {"suite": b.suite, "title": b.title, "metric": b.metric, "source": origins[b.name]}
                       for b in benches},
        "results": summarise(records, {b.name: b for b in benches}, settings.samples, seconds),
        "settings": settings.model_dump(),
        "records": records,
    }
