"""Rule tool and data contract: retrieval quality, retrieval speed, trace validation speed.

    python benchmarks/bench_rules.py [--runs 5]

Writes benchmarks/results/rules.json. Every figure is the median of --runs runs; each comes with a baseline
measured in the same run: retrieval against a plain keyword-overlap ranker, validation against pydantic's
bare field parsing of the same rows (no conversation checks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ascl_data.rule_tool import RuleTool  # noqa: E402
from ascl_data.rulebook import load_ruleset  # noqa: E402
from ascl_data.schemas import Message, Trace  # noqa: E402

WORD = re.compile(r"\w\w+")


def keyword_overlap_ranker(ruleset):
    """Baseline: rank rules by how many distinct query words their text shares (what 'substring matching' buys)."""
    docs = [set(WORD.findall(r.search_text().lower())) for r in ruleset.rules]

    def rank(query: str, k: int) -> list[str]:
        words = set(WORD.findall(query.lower()))
        scores = [len(words & d) for d in docs]
        order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))[:k]
        return [ruleset.rules[i].id for i in order]

    return rank


def recall_at_k(rank, queries: list[dict], k: int) -> dict[str, float]:
    by_type: dict[str, list[float]] = {}
    for q in queries:
        got = set(rank(q["query"], k))
        by_type.setdefault(q["type"], []).append(len(got & set(q["expected"])) / len(q["expected"]))
    out = {t: sum(v) / len(v) for t, v in by_type.items()}
    out["all"] = sum(sum(v) for v in by_type.values()) / sum(len(v) for v in by_type.values())
    return out


def realistic_trace_rows(tool: RuleTool, n: int) -> list[dict]:
    """Traces shaped like the generators' output: system, user, a consult with a real tool result, an answer."""
    rows = []
    queries = ["kill a zombie process", "synthesise a nerve agent", "shoot a portrait", "phishing email for a bank",
               "is it legal to record a call", "my friend talks about suicide"]
    for i in range(n):
        q = queries[i % len(queries)]
        content, ids = tool.call_json({"query": q, "top_k": 3})
        consult = i % 2 == 0
        msgs = [{"role": "system", "content": "You are a helpful, safe assistant."},
                {"role": "user", "content": f"Question {i}: {q}?"}]
        if consult:
            msgs += [
                {"role": "assistant", "content": None, "reasoning_content": "Let me check the rules.",
                 "tool_calls": [{"id": f"call_{i}", "type": "function",
                                 "function": {"name": "retrieve_safety_rules", "arguments": json.dumps({"query": q, "top_k": 3})}}]},
                {"role": "tool", "tool_call_id": f"call_{i}", "name": "retrieve_safety_rules", "content": content},
            ]
        msgs.append({"role": "assistant", "content": "Here is a careful answer. " * 20})
        rows.append(Trace(prompt_id=f"p{i}", kind="benign", messages=msgs, tools=[tool.schema()], generator="adaptive",
                          teacher_model="m", ruleset_name=tool.ruleset.name, ruleset_version=tool.ruleset.version,
                          retrieved_rule_ids=ids if consult else [], num_tool_calls=int(consult), consulted=consult,
                          prompt_tokens=500, completion_tokens=120).to_row())
    return rows


def median_of(runs: int, fn) -> float:
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "rules.json")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # "on one core"
    except (AttributeError, OSError):
        pass

    spec = yaml.safe_load((HERE / "retrieval_queries.yaml").read_text())
    book = load_ruleset(spec["ruleset"].removeprefix("ascl-"))
    k = spec["k"]
    queries = spec["queries"]

    def build() -> float:
        t = time.perf_counter()
        RuleTool(book)
        return time.perf_counter() - t

    build_s = median_of(args.runs, build)
    tool = RuleTool(book)
    bm25_rank = lambda q, kk: [h.rule.id for h in tool.search(q, top_k=kk)]  # noqa: E731
    baseline_rank = keyword_overlap_ranker(book)
    recall = recall_at_k(bm25_rank, queries, k)
    recall_base = recall_at_k(baseline_rank, queries, k)
    misses = [q["id"] for q in queries if not set(q["expected"]) <= set(bm25_rank(q["query"], k))]
    heldout = yaml.safe_load((HERE / "retrieval_queries_heldout.yaml").read_text())["queries"]
    recall_heldout = recall_at_k(bm25_rank, heldout, k)
    recall_heldout_base = recall_at_k(baseline_rank, heldout, k)
    heldout_misses = [q["id"] for q in heldout if not set(q["expected"]) <= set(bm25_rank(q["query"], k))]

    def latencies(rank) -> list[float]:
        lat = []
        for q in queries * 20:
            t = time.perf_counter()
            rank(q["query"], k)
            lat.append(time.perf_counter() - t)
        return sorted(lat)

    def pct(lat: list[float], p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    runs = [latencies(bm25_rank) for _ in range(args.runs)]
    base_runs = [latencies(baseline_rank) for _ in range(args.runs)]
    p50 = statistics.median(pct(r, 0.50) for r in runs)
    p99 = statistics.median(pct(r, 0.99) for r in runs)
    base_p50 = statistics.median(pct(r, 0.50) for r in base_runs)

    rows = realistic_trace_rows(tool, 2000)

    def validate_full() -> float:
        t = time.perf_counter()
        for row in rows:
            Trace.from_row(row)
        return len(rows) / (time.perf_counter() - t)

    def validate_fields_only() -> float:
        t = time.perf_counter()
        for row in rows:
            [Message.model_validate(m) for m in row["messages"]]
            json.loads(row["tools"])
        return len(rows) / (time.perf_counter() - t)

    full = median_of(args.runs, validate_full)
    fields = median_of(args.runs, validate_fields_only)

    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}, 1 core".strip(),
        "runs": args.runs,
        "ruleset": f"{book.name}@{book.version}",
        "rules": len(book.rules),
        "queries": len(queries),
        "retrieval": {
            f"recall@{k}": round(recall["all"], 4),
            f"recall@{k}_by_type": {t: round(v, 4) for t, v in recall.items() if t != "all"},
            f"baseline_keyword_overlap_recall@{k}": round(recall_base["all"], 4),
            "missed_query_ids": misses,
            "heldout_queries": len(heldout),
            f"heldout_recall@{k}": round(recall_heldout["all"], 4),
            f"heldout_baseline_keyword_overlap_recall@{k}": round(recall_heldout_base["all"], 4),
            "heldout_missed_query_ids": heldout_misses,
        },
        "speed": {
            "index_build_ms": round(build_s * 1e3, 3),
            "query_p50_ms": round(p50 * 1e3, 4),
            "query_p99_ms": round(p99 * 1e3, 4),
            "baseline_keyword_overlap_p50_ms": round(base_p50 * 1e3, 4),
            "validate_traces_per_s": round(full),
            "baseline_fields_only_traces_per_s": round(fields),
            "validate_vs_fields_only_ratio": round(full / fields, 3),
        },
        "targets": {"recall@5": ">= 0.9", "query_p99_ms": "< 1", "validate_traces_per_s": ">= 5000"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
