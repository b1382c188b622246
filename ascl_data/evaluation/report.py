"""Eval output: a table per suite (rich on the terminal, markdown in `results.md`), `results.json`, per-item
`records.jsonl`, and `compare`: several runs side by side as a markdown table and a bar chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ascl_data.errors import InputError, Problem
from ascl_data.evaluation.metrics import SUITE_ORDER

TITLES = {"safety": "Safety (safety rate %, higher is better)",
          "overrefusal": "Over-refusal (refusal rate %, lower is better)",
          "reasoning": "Reasoning (accuracy %, avg@1)"}
RESULTS, MARKDOWN, RECORDS = "results.json", "results.md", "records.jsonl"


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))


def suite_rows(report: dict[str, Any], suite: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one suite's table: a row per (benchmark, mode), the suite average last."""
    rows = [r for r in report["results"] if r["suite"] == suite]
    passk = f"pass@{report['samples']}" if report["samples"] > 1 and suite == "reasoning" else None
    judged = any("judge_agreement" in r for r in rows)  # a model judge labelled this suite's answers
    header = ["benchmark", "mode", rows[0]["metric"] if rows else "value", *([passk] if passk else []),
              "n", "consult %", "tool calls", "failed %", "unscored", "uncertain",
              *(["judges agree %", "judge harmful %"] if judged else []), "seconds"]
    body = []
    for r in rows:
        body.append([r["benchmark"], r["mode"], _fmt(r["value"]), *([_fmt(r.get(passk))] if passk else []),
                     _fmt(r["n"]), _fmt(r.get("consultation_rate")), _fmt(r.get("mean_tool_calls")),
                     _fmt(r.get("failure_rate")), _fmt(r.get("unscored")), _fmt(r.get("uncertain")),
                     *([_fmt(r.get("judge_agreement")), _fmt(r.get("judge_harmful"))] if judged else []),
                     _fmt(r.get("seconds"))])
    return header, body


def _suites(report: dict[str, Any]) -> list[str]:
    return [s for s in SUITE_ORDER if any(r["suite"] == s for r in report["results"])]


def render_tables(report: dict[str, Any]) -> list[Any]:
    """A rich table per suite."""
    from rich.table import Table

    tables = []
    for suite in _suites(report):
        header, body = suite_rows(report, suite)
        table = Table(title=f"{TITLES[suite]}: {report['model']}")
        for i, col in enumerate(header):
            table.add_column(col, justify="left" if i < 2 else "right")
        for row in body:
            table.add_row(*row, style="bold" if row[0] == "average" else None)
        tables.append(table)
    return tables


def md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def markdown(report: dict[str, Any]) -> str:
    """The suite tables as markdown, with the model, rule book and benchmark sources above them."""
    parts = [f"# eval: {report['model']} ({report['backend']}), rule book {report['ruleset']}",
             f"modes: {', '.join(report['modes'])}; samples per item: {report['samples']}; "
             f"temperature: {report['temperature']}; limit per benchmark: {report['limit']}"]
    judge = report.get("judge") or {}
    if judge.get("model_judge"):
        parts.append(f"judged by the rule-based classifier and the model judge {judge['model_judge']} "
                     f"({judge['format']} format, {judge['mode']} mode)")
    for suite in _suites(report):
        parts += [f"## {TITLES[suite]}", md_table(*suite_rows(report, suite))]
    sources = [[name, b["title"], b["source"]] for name, b in report["benchmarks"].items()]
    parts += ["## Sources", md_table(["benchmark", "title", "loaded from"], sources)]
    return "\n\n".join(parts) + "\n"


def write_outputs(report: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """`results.json` (everything but the records), `records.jsonl` and `results.md` in `out`; atomic writes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in report.items() if k != "records"}
    summary["records_file"] = RECORDS
    texts = {
        RESULTS: json.dumps(summary, indent=2, ensure_ascii=False),
        RECORDS: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in report["records"]),
        MARKDOWN: markdown(report),
    }
    paths = {}
    for name, text in texts.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)
        paths[name] = out / name
    return paths


def load_result(path: str | Path) -> dict[str, Any]:
    """A `results.json` (or the folder holding it), checked enough to name the file if it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        problem = Problem(str(path), "", f"not a readable eval results file ({exc})")
        raise InputError("eval compare", [problem]) from None
    if not isinstance(data, dict) or "results" not in data:
        raise InputError("eval compare", [Problem(str(path), "results", "missing: not written by `ascl-data eval`")])
    return data


def compare(paths: list[str | Path], labels: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per benchmark (suite averages included), one column per (run, mode) holding the metric."""
    if labels and len(labels) != len(paths):
        raise InputError("eval compare", [Problem("--label", "", f"{len(labels)} labels for {len(paths)} runs")])
    runs = [load_result(p) for p in paths]
    names = labels or [Path(p).stem if Path(p).suffix else Path(p).name for p in paths]
    columns = [(i, mode) for i, run in enumerate(runs) for mode in run["modes"]]
    keys = list(dict.fromkeys((r["suite"], r["benchmark"], r["metric"]) for run in runs for r in run["results"]))
    keys.sort(key=lambda k: (SUITE_ORDER.index(k[0]), k[1] == "average"))
    values = {(i, r["mode"], r["suite"], r["benchmark"]): r["value"]
              for i, run in enumerate(runs) for r in run["results"]}
    header = ["suite", "benchmark", "metric", *[f"{names[i]} [{mode}]" for i, mode in columns]]
    body = [[suite, bench, metric, *[_fmt(values.get((i, mode, suite, bench))) for i, mode in columns]]
            for suite, bench, metric in keys]
    return header, body


def plot_compare(header: list[str], body: list[list[str]], out: str | Path) -> Path:
    """Grouped bars: one panel per suite, one bar per (run, mode) for each benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(dict.fromkeys(row[0] for row in body))
    runs = header[3:]
    fig, axes = plt.subplots(len(suites), 1, figsize=(max(6, 1.2 * max(len(body), 4)), 3.2 * len(suites)),
                             squeeze=False)
    width = 0.8 / max(len(runs), 1)
    for ax, suite in zip(axes[:, 0], suites):
        rows = [r for r in body if r[0] == suite]
        for j, run in enumerate(runs):
            ys = [float(r[3 + j]) if r[3 + j] != "-" else 0.0 for r in rows]
            ax.bar([x + j * width for x in range(len(rows))], ys, width, label=run)
        ax.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(rows))])
        ax.set_xticklabels([r[1] for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(f"{rows[0][2]} %")
        ax.set_ylim(0, 100)
        ax.set_title(TITLES.get(suite, suite), fontsize=10)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
