"""Rule tool and data contract: retrieval quality, retrieval speed, trace validation speed.

    python benchmarks/bench_rules.py [--runs 5]

Writes benchmarks/results/rules.json. Every figure is the median of --runs runs; each comes with a baseline
measured in the same run: retrieval against a plain keyword-overlap ranker, validation against pydantic's
bare field parsing of the same rows (no conversation checks).

Query latency is reported two ways, idle and under load (a concurrent CPU-bound Python thread, as in a build
whose tool calls share the interpreter with other work): CPU time per query (the thread's own time: what the
tool costs) and wall-clock p50/p99 (what a caller waits, which under load includes waiting for the GIL).
Held-out recall comes with a 95% bootstrap interval over queries and the queries where BM25 and the keyword
baseline differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ascl_data.rule_tool import RuleTool  # noqa: E402
from ascl_data.rulebook import load_ruleset  # noqa: E402
from ascl_data.schemas import Message, Trace  # noqa: E402
from provenance import write_results

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


def per_query_recall(rank, queries: list[dict], k: int) -> list[float]:
    return [len(set(rank(q["query"], k)) & set(q["expected"])) / len(q["expected"]) for q in queries]


def bootstrap_ci(values: list[float], n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean, resampling queries."""
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(n))
    return means[int(0.025 * n)], means[int(0.975 * n) - 1]


def query_latencies(rank, queries: list[dict], k: int, repeat: int) -> tuple[list[float], list[float]]:
    """(CPU seconds, wall seconds) per query, each sorted."""
    cpu, wall = [], []
    for q in queries * repeat:
        c, t = time.thread_time(), time.perf_counter()
        rank(q["query"], k)
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return sorted(cpu), sorted(wall)


class CpuLoad:
    """A pure-Python busy thread for the duration of a `with` block (it competes for the GIL, as build work would)."""

    def __enter__(self) -> CpuLoad:
        self._stop = threading.Event()

        def spin() -> None:
            x = 0
            while not self._stop.is_set():
                for i in range(1000):
                    x += i * i

        self._thread = threading.Thread(target=spin, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
    per_q = per_query_recall(bm25_rank, heldout, k)
    per_q_base = per_query_recall(baseline_rank, heldout, k)
    better = [q["id"] for q, a, b in zip(heldout, per_q, per_q_base) if a > b]
    worse = [q["id"] for q, a, b in zip(heldout, per_q, per_q_base) if a < b]

    def pct(lat: list[float], p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    latency: dict[str, dict[str, float]] = {}
    for load in (False, True):  # idle then loaded; within each, BM25 and the baseline alternate run by run
        samples: dict[str, list[tuple[list[float], list[float]]]] = {"bm25": [], "keyword_baseline": []}
        for _ in range(args.runs):
            for name, rank in (("bm25", bm25_rank), ("keyword_baseline", baseline_rank)):
                if load:
                    with CpuLoad():
                        samples[name].append(query_latencies(rank, queries, k, 10))
                else:
                    samples[name].append(query_latencies(rank, queries, k, 10))
        for name, runs in samples.items():
            latency[f"{name}_{'loaded' if load else 'idle'}"] = {
                "cpu_ms_per_query_median": round(statistics.median(pct(c, 0.5) for c, _ in runs) * 1e3, 4),
                "cpu_ms_per_query_mean": round(statistics.median(sum(c) / len(c) for c, _ in runs) * 1e3, 4),
                "wall_p50_ms": round(statistics.median(pct(w, 0.5) for _, w in runs) * 1e3, 4),
                "wall_p99_ms": round(statistics.median(pct(w, 0.99) for _, w in runs) * 1e3, 4),
            }

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
            f"heldout_recall@{k}_95ci_bootstrap": [round(x, 4) for x in bootstrap_ci(per_q)],
            f"heldout_baseline_keyword_overlap_recall@{k}_95ci_bootstrap": [round(x, 4) for x in bootstrap_ci(per_q_base)],
            f"heldout_recall@{k}_by_type": {t: round(v, 4) for t, v in recall_heldout.items() if t != "all"},
            "heldout_missed_query_ids": heldout_misses,
            "heldout_queries_bm25_better_than_baseline": better,
            "heldout_queries_bm25_worse_than_baseline": worse,
        },
        "query_latency": latency,
        "speed": {
            "index_build_ms": round(build_s * 1e3, 3),
            "validate_traces_per_s": round(full),
            "baseline_fields_only_traces_per_s": round(fields),
            "validate_vs_fields_only_ratio": round(full / fields, 3),
        },
        "targets": {"recall@5": ">= 0.9", "query_wall_p99_ms_idle": "< 1", "validate_traces_per_s": ">= 5000"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
