"""`ascl-data eval`: public safety, over-refusal and reasoning benchmarks under rule modes; `eval compare`; `eval list`.

`ascl-data eval --model M --suite ascl --mode live --mode none --mode system` runs every benchmark of the ASCL table
with the rule tool live, without rules, and with the rule book in the system prompt, and writes `results.json`,
`results.md` and `records.jsonl` to `--out`. `--config configs/eval_ascl.yaml` reads the same settings from YAML;
options given on the command line override it. `--judge-backend B --judge-format F --judge-setting model=M` adds a
model judge beside the rule-based classifier (the YAML's `judge:` section is the build's judge config).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from ascl_data.backends.names import BACKENDS

_NAMES = ", ".join(BACKENDS)  # the one list of backend names, for the options' help


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Evaluate a model on safety, over-refusal and reasoning benchmarks.")

    @group.callback(invoke_without_command=True)
    def eval_(
        ctx: typer.Context,
        model: Optional[str] = typer.Option(None, "--model", help="Model folder, Hub id, `embedded`, or served name."),
        config: Optional[Path] = typer.Option(None, "--config", help="Eval settings YAML (configs/eval_*.yaml)."),
        suite: list[str] = typer.Option([], "--suite", "--benchmark", "-b",
                                        help="Suite (safety, overrefusal, reasoning, ascl) or benchmark. Repeatable."),
        mode: list[str] = typer.Option([], "--mode", help="Rule mode: live, none, system. Repeatable."),
        limit: Optional[int] = typer.Option(None, "--limit", help="First N items of each benchmark."),
        samples: Optional[int] = typer.Option(None, "--samples", help="Answers per item; reports pass@k for k > 1."),
        backend: Optional[str] = typer.Option(None, "--backend", help=f"{_NAMES}."),
        backend_setting: list[str] = typer.Option(
            [], "--backend-setting", help="KEY=VALUE for the backend (YAML value), e.g. base_url=..., dtype=bfloat16."
        ),
        ruleset: Optional[str] = typer.Option(None, "--ruleset", help="Rule book name or YAML file."),
        local: list[str] = typer.Option([], "--local", help="NAME=PATH: a local copy of a benchmark. Repeatable."),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder of <benchmark>.jsonl/.parquet/.csv."),
        custom: Optional[str] = typer.Option(None, "--custom", help="Your own benchmark: a file, folder or Hub id."),
        column: list[str] = typer.Option(
            [], "--column", help="For --custom: prompt=COL, reference=COL, choices=COL, kind_column=COL. Repeatable."
        ),
        kind: Optional[str] = typer.Option(None, "--kind", help="For --custom: the kind of every prompt."),
        dataset: Optional[str] = typer.Option(None, "--dataset", help="A built dataset: its split, by prompt kind."),
        split: str = typer.Option("eval", "--split", help="Split of --dataset / --custom."),
        max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Tokens per assistant turn."),
        max_turns: Optional[int] = typer.Option(None, "--max-turns", help="Assistant turns in live mode."),
        temperature: Optional[float] = typer.Option(None, "--temperature"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Conversations per tool-loop call."),
        judge_backend: Optional[str] = typer.Option(
            None, "--judge-backend", help=f"A model judge's backend ({_NAMES}): judges with it too."
        ),
        judge_format: Optional[str] = typer.Option(
            None, "--judge-format", help="Model judge format: rubric, llama_guard_3, wildguard, qwen3guard."
        ),
        judge_mode: Optional[str] = typer.Option(
            None, "--judge-mode", help="override (the model judge's verdict counts) or agree (both must agree)."
        ),
        judge_setting: list[str] = typer.Option(
            [], "--judge-setting", help="KEY=VALUE for the judge backend, e.g. model=allenai/wildguard. Repeatable."
        ),
        out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default eval_results)."),
    ) -> None:
        """Run benchmarks: a table per suite, results.json, results.md and per-item records.jsonl in --out."""
        if ctx.invoked_subcommand is not None:
            return
        from pydantic import ValidationError

        from ascl_data.errors import InputError, Problem, load_yaml_model, validation_problems
        from ascl_data.overrides import parse_overrides
        from ascl_data.evaluation import EvalSettings, evaluate, render_tables, write_outputs

        base: dict[str, Any] = {}
        if config is not None:
            base = load_yaml_model(config, EvalSettings, what=f"eval config {config}").model_dump(exclude_unset=True)
        given: dict[str, Any] = {
            "model": model, "limit": limit, "samples": samples, "backend": backend, "ruleset": ruleset,
            "data_dir": data_dir, "max_new_tokens": max_new_tokens, "max_turns": max_turns,
            "temperature": temperature, "batch_size": batch_size, "out": str(out) if out else None,
        }
        data = {**base, **{k: v for k, v in given.items() if v is not None}}
        if suite:
            data["benchmarks"] = list(suite)
        if mode:
            data["modes"] = list(mode)
        if backend_setting:
            data["backend_settings"] = {**data.get("backend_settings", {}),
                                        **parse_overrides(backend_setting, "--backend-setting")}
        judge = {k: v for k, v in {"backend": judge_backend, "model_judge_format": judge_format,
                                   "model_judge_mode": judge_mode}.items() if v is not None}
        if judge or judge_setting:  # into the config's model_judge section where it has one (judge.config)
            from ascl_data.judge.config import with_options

            if judge_setting:
                judge["backend_settings"] = parse_overrides(judge_setting, "--judge-setting")
            data["judge"] = with_options(data.get("judge"), judge)
        if local:
            local_copies = parse_overrides(local, "--local")
            data["local"] = {**data.get("local", {}), **{name: str(path) for name, path in local_copies.items()}}
        customs = list(data.get("custom", []))
        if custom:
            columns = {key: str(col) for key, col in parse_overrides(column, "--column").items()}
            customs.append({"name": Path(custom).stem or "custom", "path": custom, "split": split,
                            **({"kind": kind} if kind else {}), **columns})
        if dataset:
            customs.append({"name": "dataset", "path": dataset, "split": split, "prompt": "prompt",
                            "kind_column": "kind", "reference": "reference"})
        if customs:
            data["custom"] = customs
            if not suite and "benchmarks" not in base:
                data["benchmarks"] = []
        if "model" not in data:
            raise InputError("ascl-data eval", [Problem("--model", "", "required (or `model:` in --config)")])
        try:
            settings = EvalSettings.model_validate(data)
        except ValidationError as exc:
            problems = validation_problems(exc, "command line")
            given = {"backend_settings": (backend_setting, "--backend-setting"),
                     "judge.model_judge": (judge_setting, "--judge-setting")}
            for i, problem in enumerate(problems):  # a setting typed on the command line is named by its option
                for prefix, (options, flag) in given.items():
                    key = problem.field.removeprefix(f"{prefix}.").split(".")[-1]
                    if options and problem.field.startswith(f"{prefix}.") and any(
                            o.split("=", 1)[0].strip() == key for o in options):
                        problems[i] = dataclasses.replace(problem, field=f"{flag} {key}")
            raise InputError("ascl-data eval options", problems) from None
        from ascl_data.pipeline.check import model_problem

        if why := model_problem(settings.model, settings.backend):
            raise InputError("ascl-data eval", [Problem("--model", "", why)])
        report = evaluate(settings)
        console = Console()
        for table in render_tables(report):
            console.print(table)
        paths = write_outputs(report, settings.out)
        console.print(f"results: {paths['results.json']} "
                      f"(table: {paths['results.md']}, records: {paths['records.jsonl']})")
        if after := sum(bool(r.get("text_after_call")) for r in report["records"]):
            console.print(f"{after} answer(s) wrote text after a tool call; it was dropped and the call ran, as vLLM's "
                          f"hermes tool parser does (records: text_after_call; results: text_after_call_rate)")
        if echoed := sum(bool(r.get("echoed_tool_result")) for r in report["records"]):
            console.print(f"{echoed} answer(s) copied the tool result back instead of answering; scored as the text a "
                          f"vLLM server returns (records: echoed_tool_result; results: echoed_tool_result_rate)")
        empty = [r for r in report["results"] if r["benchmark"] != "average" and r["value"] is None]
        for r in empty:
            failed = round((r.get("failure_rate") or 0) * r["answers"] / 100)
            console.print(f"[red]no scored answer[/red] in {r['benchmark']} [{r['mode']}]: {r['answers']} answer(s), "
                          f"{failed} failed (the model server, or the tool loop), {r['unscored']} unscored, "
                          f"{r.get('uncertain', 0)} uncertain (judge.uncertain); see "
                          f"{paths['records.jsonl']} for why")
        if empty:
            raise typer.Exit(1)  # a run with a benchmark that measured nothing is not a result

    @group.command("compare")
    def compare_(
        runs: list[Path] = typer.Argument(..., help="results.json files (or their folders) of earlier runs."),
        label: list[str] = typer.Option([], "--label", help="A name per run, in order (default: file names)."),
        out: Path = typer.Option(Path("eval_compare.png"), "--out", help="Where to write the plot (PNG)."),
    ) -> None:
        """Several runs side by side: a markdown table (printed and beside the plot) and a bar chart per suite."""
        from ascl_data.evaluation.report import compare, md_table, plot_compare

        header, body = compare(list(runs), list(label) or None)
        table = md_table(header, body)
        plot = plot_compare(header, body, out)
        plot.with_suffix(".md").write_text(table + "\n")
        console = Console()
        console.print(table, markup=False, highlight=False)
        console.print(f"plot: {plot} (table: {plot.with_suffix('.md')})")

    @group.command("list")
    def list_() -> None:
        """The benchmarks, their suites, metrics and Hub sources."""
        from rich.table import Table

        from ascl_data.evaluation import BENCHMARKS, SUITES

        table = Table(title="eval benchmarks")
        for col in ("name", "suite", "metric", "title", "source"):
            table.add_column(col)
        for b in BENCHMARKS.values():
            table.add_row(b.name, b.suite, b.metric, b.title, b.source())
        console = Console()
        console.print(table)
        console.print("suites: " + "; ".join(f"{s} ({len(n)})" for s, n in SUITES.items()))

    app.add_typer(group, name="eval")
