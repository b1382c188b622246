"""The build against its ceiling on a latency-bound teacher: does the scheduler keep `max_in_flight` requests busy?

A loopback teacher in the process answers each request after a delay drawn from a lognormal (median 0.5 s) seeded
by the request itself, so every path sees the same delay for the same request and the figure is stable on a noisy
machine. 64 two-turn consult conversations (the teacher calls the rule tool, then answers) at concurrency 32:

- `ceiling`: a bare asyncio loop, each conversation on its own, at most 32 requests in flight;
- `build`: the whole build (`ascl_data.build.Build`, sources -> plan -> scheduler -> judge -> shards, card
  included) with `teacher.max_in_flight: 32`, `output.shard_size: 16`.

Rounds alternate; the medians and their ratio go to benchmarks/results/scheduler.json.

    python benchmarks/bench_scheduler.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import xxhash
import yaml

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.build import Build, check_recipe

N, CONCURRENCY, MEDIAN_S, SIGMA = 64, 32, 0.5, 0.6
OLD = "--old-build" in sys.argv  # time only the build, with a recipe the pre-scheduler code accepts
TOPICS = ["rivers", "owls", "bread", "trains", "clocks", "maps", "glass", "tea", "snow", "bees", "kites", "salt",
          "moss", "ink", "wool", "iron"]
PROMPTS = [f"Tell me something about {TOPICS[i % 16]} and the number {i} in the year {1900 + 7 * i}." for i in range(N)]


class DelayedTeacher(Backend):
    """Benchmark only: turn 1 calls the rule tool, turn 2 answers; each request waits its own seeded delay."""

    name = "delayed"
    model = "delayed"

    def __init__(self) -> None:
        self.requests = 0

    async def generate(self, conversations, tools, params):
        return list(await asyncio.gather(*(self._one(c) for c in conversations)))

    async def _one(self, conversation) -> Completion:
        self.requests += 1
        key = json.dumps(conversation, sort_keys=True).encode()
        u = (xxhash.xxh64_intdigest(key, 1) + 0.5) / 2**64
        z = statistics.NormalDist().inv_cdf(u)
        await asyncio.sleep(MEDIAN_S * math.exp(SIGMA * z))
        if sum(m["role"] == "assistant" for m in conversation) == 0:
            message = {"role": "assistant", "content": None, "tool_calls": [{"id": "c0", "type": "function", "function": {
                "name": "retrieve_safety_rules", "arguments": json.dumps({"query": "is this allowed"})}}]}
        else:
            message = {"role": "assistant", "content": "Here is a short, helpful answer about it."}
        return Completion(message=message, prompt_tokens=10, completion_tokens=8, finish_reason="stop")


async def ceiling() -> float:
    """Each conversation on its own, at most CONCURRENCY requests in flight: the same two requests per prompt."""
    from ascl_data.generators.adaptive import AdaptiveGenerator
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset
    from ascl_data.schemas import PromptRecord

    generator = AdaptiveGenerator(RuleTool(load_ruleset("default")), max_turns=2, max_tool_calls=1)
    teacher, slots = DelayedTeacher(), asyncio.Semaphore(CONCURRENCY)
    records = [PromptRecord(messages=[{"role": "user", "content": p}], kind="benign", provenance={"dataset": "b"})
               for p in PROMPTS]

    async def one(record) -> None:
        conversation = generator.conversation(record)
        for _ in range(2):
            async with slots:
                completion = await teacher.complete(conversation, generator.tools(), SamplingParams())
            conversation = [*conversation, completion.message]
            if completion.message.get("tool_calls"):
                conversation.append({"role": "tool", "content": "{}", "tool_call_id": "c0"})

    t0 = time.perf_counter()
    await asyncio.gather(*(one(r) for r in records))
    return time.perf_counter() - t0


def build(tmp: Path) -> float:
    (tmp / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p, "kind": "benign"}) + "\n" for p in PROMPTS))
    recipe = {"name": "bench-scheduler", "sources": [{"path": "prompts.jsonl"}], "dedup": {"exact": False, "near": False},
              "generators": [{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1}],
              "teacher": {"max_in_flight": CONCURRENCY, "sampling": {"temperature": 0.0}} if not OLD else
              {"sampling": {"temperature": 0.0}},  # the batch-of-8 build before the scheduler (no max_in_flight)
              "output": {"dir": "out", "shard_size": 16, "plots": False}}
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    teacher = DelayedTeacher()
    t0 = time.perf_counter()
    result = Build(check_recipe(tmp / "recipe.yaml"), backend=teacher, progress=False, overwrite=True).run()
    seconds = time.perf_counter() - t0
    assert result.summary.prompts_in == N and teacher.requests == 2 * N, (result.summary, teacher.requests)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--old-build", action="store_true", help="time the build only (for an older checkout)")
    args = parser.parse_args()
    if args.old_build:
        runs = [build(Path(tempfile.mkdtemp(prefix="bench-scheduler-"))) for _ in range(args.rounds)]
        print(json.dumps({"old_build_s": runs, "median_s": statistics.median(runs)}))
        return
    times: dict[str, list[float]] = {"ceiling": [], "build": []}
    for _ in range(args.rounds):
        times["ceiling"].append(asyncio.run(ceiling()))
        times["build"].append(build(Path(tempfile.mkdtemp(prefix="bench-scheduler-"))))
    medians = {k: statistics.median(v) for k, v in times.items()}
    out = {"prompts": N, "requests": 2 * N, "concurrency": CONCURRENCY, "delay_median_s": MEDIAN_S, "sigma": SIGMA,
           "rounds": args.rounds, "seconds": times, "median_s": medians,
           "build_vs_ceiling": round(medians["ceiling"] / medians["build"], 3), "python": sys.version.split()[0]}
    path = Path(__file__).parent / "results" / "scheduler.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("median_s", "build_vs_ceiling")}))


if __name__ == "__main__":
    main()
