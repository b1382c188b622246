"""Trace quality (issue 26): the quality figures of a build, of the hand-written seed traces (the best case), what
the per-trace quality check costs on the build's hot path, and the build vs bare-loop throughput ratio with and
without it.

- `--build DIR`: a built folder (e.g. runs/quickstart after `ascl-data build configs/quickstart.yaml`); its
  stats.json quality section and quality rejections are copied into the results.
- seeds: `ascl_data/data/seed_traces.jsonl` rendered as the build renders them (the real rule tool, its real
  results), checked by the build's `QualityCheck`, written as sft rows and summed up by the build's own
  `quality_stats`, so the figures read like a card's.
- hot path: `QualityCheck.check` (what the scheduler runs after the judge; no rater) on every seed trace and every
  trace of `--build`, `--repeat` times each; the median microseconds per trace, consulted and direct apart.
- `--throughput-baseline COMMIT`: benchmarks/bench_build_throughput.py (sim server) run on a checkout of COMMIT
  (no quality check) and on this tree, alternating, `--rounds` times; refused while the 1-minute load is above
  `--max-load`. The ratio is bare loop / build wall time (1.0: the build keeps the server as busy as the bare loop).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_quality.py --build runs/quickstart
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_quality.py --build runs/quickstart --throughput-baseline df181be
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "trace_quality.json"


def machine() -> dict[str, Any]:
    """commit, cpu and load, read without the package."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"commit": commit + ("-dirty" if dirty else ""), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpu": f"{cpu} ({os.cpu_count()} cores)", "load": [round(x, 2) for x in os.getloadavg()],
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "python": platform.python_version()}


def seed_traces() -> list[Any]:
    from ascl_data.embedded_adapter import RULESET, load_seeds, seed_messages
    from ascl_data.prompts import adaptive_system_prompt
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset
    from ascl_data.schemas import PromptRecord, Trace

    ruleset = load_ruleset(RULESET)
    tool, system = RuleTool(ruleset), adaptive_system_prompt(ruleset)
    traces = []
    for seed in load_seeds():
        messages, tools = seed_messages(seed, tool, system)
        calls = sum(len(m.get("tool_calls") or []) for m in messages)
        ids = [r["id"] for m in messages if m["role"] == "tool" for r in json.loads(m["content"]).get("rules", [])]
        record = PromptRecord(messages=[{"role": "user", "content": seed.prompt}], kind=seed.kind,
                              provenance={"dataset": "seed_traces.jsonl"})
        traces.append(Trace(prompt_id=record.id, kind=seed.kind, category=seed.category, messages=messages,
                            tools=tools or [], generator="seed", teacher_model="hand-written", ruleset_name=ruleset.name,
                            ruleset_version=ruleset.version, retrieved_rule_ids=ids, num_tool_calls=calls,
                            consulted=calls > 0, verdict="refuse" if seed.kind in ("harmful", "jailbreak") else "comply"))
    return traces


def quality_figures(traces: list[Any], check: Any) -> dict[str, Any]:
    """The traces through the build's check, written as sft rows and summed up by the build's `quality_stats`."""
    import polars as pl

    from ascl_data.pipeline.stats import quality_stats
    from ascl_data.pipeline.writer import trace_row, write_table
    from ascl_data.row_schema import SFT_SCHEMA
    from ascl_data.recipe import QualityConfig

    checked = [asyncio.run(check.check(t)) for t in traces]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sft.parquet"
        write_table(path, [trace_row(t) for t in checked], SFT_SCHEMA)
        return quality_stats(pl.scan_parquet(path), {}, QualityConfig(), seed=0)


def hot_path(traces: list[Any], check: Any, repeat: int) -> dict[str, Any]:
    """Microseconds of one `QualityCheck.check` per trace (no rater; it runs inside the event loop, as in the
    build), CPU time of this thread and wall time, consulted and direct traces apart."""
    loop = asyncio.new_event_loop()
    cpu: dict[str, list[float]] = {"consulted": [], "direct": []}
    wall: dict[str, list[float]] = {"consulted": [], "direct": []}
    try:
        for t in traces:
            loop.run_until_complete(check.check(t))  # warm
            kind = "consulted" if t.consulted else "direct"
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            for _ in range(repeat):
                loop.run_until_complete(check.check(t))
            cpu[kind].append((time.thread_time_ns() - start_cpu) / repeat / 1000)
            wall[kind].append((time.perf_counter_ns() - start) / repeat / 1000)
    finally:
        loop.close()
    out: dict[str, Any] = {"traces": {k: len(v) for k, v in cpu.items()}, "repeat": repeat}
    for name, per in (("cpu", cpu), ("wall", wall)):  # CPU time: what a loaded machine's waits do not inflate
        every = per["consulted"] + per["direct"]
        out[name] = {"median_us_per_trace": round(statistics.median(every), 1),
                     **{f"median_us_{k}": round(statistics.median(v), 1) for k, v in per.items() if v},
                     "mean_us_per_trace": round(statistics.mean(every), 1), "max_us_per_trace": round(max(every), 1)}
    out["note"] = "each call includes one asyncio run_until_complete (a few us); the build awaits it in its loop"
    return out


def built_traces(folder: Path) -> list[Any]:
    import datasets

    from ascl_data.schemas import Trace

    rows = datasets.load_dataset(str(folder), split="sft")
    return [Trace.from_row({**r, "quality": None}) for r in rows]


def throughput(baseline: str, max_load: float, prompts: int, runs: int, rounds: int) -> dict[str, Any]:
    """bench_build_throughput.py (sim server, in-process) on `baseline` and on this tree, `rounds` times each,
    alternating which goes first; per tree, the median over all its runs of the paired ratio bare / build, and of
    the wall time the build spends inside and outside the server's busy span."""
    load = os.getloadavg()[0]
    if load > max_load:
        return {"skipped": f"1-minute load {load:.2f} > {max_load}: not measured"}
    base = Path(tempfile.mkdtemp(prefix="bench-quality-base-"))
    rows: dict[str, list[dict[str, Any]]] = {"baseline": [], "quality": []}
    loads: dict[str, list[list[float]]] = {"baseline": [], "quality": []}
    try:
        subprocess.run(["git", "worktree", "add", "--detach", str(base), baseline], cwd=ROOT, check=True,
                       capture_output=True)
        for link in ("generators", "rl", "rulesets", "cards"):  # the package's data folders, as in a checkout
            if not (base / "ascl_data" / link).exists():
                (base / "ascl_data" / link).symlink_to(f"../{link}")
        trees = [("baseline", base), ("quality", ROOT)]
        for r in range(rounds):
            for name, tree in trees if r % 2 == 0 else trees[::-1]:
                result = Path(tempfile.mkstemp(suffix=".json")[1])
                loads[name].append([round(x, 2) for x in os.getloadavg()])
                subprocess.run([sys.executable, str(Path(__file__).parent / "bench_build_throughput.py"), "--prompts",
                                str(prompts), "--runs", str(runs), "--out", str(result)],
                               env={**os.environ, "PYTHONPATH": str(tree)}, check=True)
                data = json.loads(result.read_text())
                result.unlink()
                rows[name] += [{"bare": b, "build": o} for b, o in zip(data["runs"]["bare"], data["runs"]["build"])]
                settings, server = data["settings"], data["server"]
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 4)

    out: dict[str, Any] = {"baseline_commit": baseline, "server": server, "settings": settings, "rounds": rounds}
    for name, pairs in rows.items():
        out[name] = {
            "load_before_each_round": loads[name],
            "runs": len(pairs),
            "median_paired_ratio": med([p["bare"]["wall_s"] / p["build"]["wall_s"] for p in pairs]),
            "median_wall_s": {k: med([p[k]["wall_s"] for p in pairs]) for k in ("bare", "build")},
            "median_served_span_s": {k: med([p[k]["served_span_s"] for p in pairs]) for k in ("bare", "build")},
            "median_outside_span_s": {k: med([p[k]["outside_span_s"] for p in pairs]) for k in ("bare", "build")},
            "median_cpu_s": {k: med([p[k]["cpu_s"] for p in pairs]) for k in ("bare", "build")},
            "paired_ratios": [round(p["bare"]["wall_s"] / p["build"]["wall_s"], 4) for p in pairs],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, help="a built folder whose quality figures and traces to use")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--throughput-baseline", metavar="COMMIT", help="also run the throughput benchmark, vs COMMIT")
    ap.add_argument("--max-load", type=float, default=2.5)
    ap.add_argument("--prompts", type=int, default=256, help="throughput: prompts per run")
    ap.add_argument("--runs", type=int, default=3, help="throughput: paired runs per tree and round")
    ap.add_argument("--rounds", type=int, default=2, help="throughput: rounds, alternating which tree goes first")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from ascl_data.pipeline.quality import QualityCheck
    from ascl_data.recipe import QualityConfig
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset

    result: dict[str, Any] = machine()
    check = QualityCheck(RuleTool(load_ruleset("default")), QualityConfig())
    seeds = seed_traces()
    result["seed_traces"] = {"file": "ascl_data/data/seed_traces.jsonl", **quality_figures(seeds, check)}
    traces = list(seeds)
    if args.build is not None:
        stats = json.loads((args.build / "stats" / "stats.json").read_text())
        log = (args.build / ".ascl" / "runs.jsonl").read_text().splitlines()  # its last run: teacher calls, cache hits
        result["build"] = {"folder": str(args.build), "last_run": json.loads(log[-1]) if log else None,
                           "rows": stats["rows"], "quality": stats.get("quality"),
                           "quality_rejections": [r for r in stats["rejections"] if r["stage"] == "quality"]}
        traces += built_traces(args.build)
    result["hot_path"] = hot_path(traces, check, args.repeat)
    if args.throughput_baseline:
        result["throughput"] = throughput(args.throughput_baseline, args.max_load, args.prompts, args.runs, args.rounds)
    result["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"hot_path": result["hot_path"], "throughput": result.get("throughput")}, indent=2))


if __name__ == "__main__":
    main()
