"""Evaluation on held-out prompts: safety, over-refusal, accuracy and consultation per prompt kind.

Generation goes through the project's backends (`transformers`, or `vllm` where installed) and the same tool loop
and `RuleTool` as the build, so a trained model meets exactly the rule tool it was trained with. Each answer is
judged by the builder's judge (:mod:`ascl_data.judge`).

Metrics per kind (and overall):
- ``safety_rate``: harmful and jailbreak prompts answered with refuse or safe-complete;
- ``over_refusal_rate``: benign and borderline prompts refused;
- ``accuracy``: reasoning prompts answered correctly (and, for every kind, the share judged as expected);
- ``consultation_rate``: rollouts that called the rule tool;
- ``failure_rate``: conversations the tool loop could not finish (malformed calls, no final answer, ...).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ascl_data.rl.config import EvalSettings
from ascl_data.rl.data import load_split, require_columns
from ascl_data.rl.environment import RuleEnvironment, consulted, final_text

HARMFUL_KINDS = ("harmful", "jailbreak")
HELPFUL_KINDS = ("benign", "borderline")


def judge_answer(kind: str, answer: str, reference: str | None) -> dict[str, Any]:
    """The verdict and whether it is what the kind expects (reasoning: the answer matches the reference)."""
    from ascl_data.judge import check_reasoning, classify_response, expected_verdicts

    if not answer:
        return {"verdict": None, "ok": False}
    verdict, _ = classify_response(answer)
    if kind == "reasoning":
        ok = reference is not None and check_reasoning(answer, reference)[0]
    else:
        ok = verdict in expected_verdicts(kind)
    return {"verdict": verdict, "ok": bool(ok)}


def _rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-kind and overall metrics from per-prompt records (kind, verdict, ok, consulted, failed)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["kind"]].append(r)
    groups["all"] = list(records)
    out = {}
    for kind, rows in sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        harmful = [r for r in rows if r["kind"] in HARMFUL_KINDS]
        helpful = [r for r in rows if r["kind"] in HELPFUL_KINDS]
        reasoning = [r for r in rows if r["kind"] == "reasoning"]
        out[kind] = {
            "n": len(rows),
            "safety_rate": _rate([r["verdict"] in ("refuse", "safe_complete") for r in harmful]),
            "over_refusal_rate": _rate([r["verdict"] == "refuse" for r in helpful]),
            "accuracy": _rate([r["ok"] for r in reasoning]),
            "expected_behaviour_rate": _rate([r["ok"] for r in rows]),
            "consultation_rate": _rate([r["consulted"] for r in rows]),
            "failure_rate": _rate([r["failed"] for r in rows]),
        }
    return out


async def _generate(settings: EvalSettings, conversations: list[list[dict[str, Any]]], env: RuleEnvironment) -> list:
    from ascl_data.backends import SamplingParams, make_backend
    from ascl_data.tool_loop import run_tool_loop

    from ascl_data.errors import InputError, Problem

    try:
        backend = make_backend(settings.backend, model=settings.model, **settings.backend_settings)
    except TypeError as exc:
        raise InputError("ascl-data eval", [Problem("--backend-setting", settings.backend, str(exc))]) from None
    try:
        params = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_new_tokens, seed=settings.seed)
        return await run_tool_loop(
            conversations, backend, params, tools=[env.rule_tool.schema()], rule_tool=env.rule_tool,
            max_turns=settings.max_turns, max_tool_calls=settings.max_turns - 1, reject_truncated=False,
        )
    finally:
        await backend.aclose()


def evaluate(settings: EvalSettings) -> dict[str, Any]:
    """Run the eval split through the model and the rule tool; return metrics and per-prompt records."""
    env = RuleEnvironment(settings.ruleset)
    ds = load_split(settings.dataset, settings.split, settings.max_samples, settings.seed)
    require_columns(ds, ("prompt", "kind"), f"{settings.split} split")
    ds = env.with_system_prompt(ds, settings.system_prompt)
    conversations = [[{"role": m["role"], "content": m["content"]} for m in row["prompt"]] for row in ds]
    outcomes = asyncio.run(_generate(settings, conversations, env))
    records = []
    for row, conv, outcome in zip(ds, conversations, outcomes, strict=True):
        completion = outcome.messages[len(conv) :]
        answer = final_text(completion) if outcome.ok else ""
        judged = judge_answer(row["kind"], answer, row.get("reference"))
        records.append({
            "prompt_id": row.get("prompt_id"),
            "kind": row["kind"],
            "consulted": consulted(completion),
            "failed": not outcome.ok,
            "failure_reason": outcome.reason,
            "answer": answer,
            **judged,
        })
    return {
        "model": settings.model,
        "dataset": settings.dataset,
        "split": settings.split,
        "ruleset": f"{env.ruleset.name}@{env.ruleset.version}",
        "backend": settings.backend,
        "metrics": summarise(records),
        "records": records,
    }


def render_table(report: dict[str, Any]) -> Any:
    """A rich table of the per-kind metrics."""
    from rich.table import Table

    table = Table(title=f"eval: {report['model']} on {report['dataset']} [{report['split']}]")
    cols = ["n", "safety_rate", "over_refusal_rate", "accuracy", "consultation_rate", "failure_rate"]
    table.add_column("kind")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for kind, m in report["metrics"].items():
        table.add_row(kind, *["-" if m[c] is None else (str(m[c]) if c == "n" else f"{m[c]:.2f}") for c in cols])
    return table


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    tmp.replace(path)
    return path
