"""Throughput of the transformers backend with the embedded SmolLM2: one batched call vs one call per prompt.

Median of several runs of each mode, interleaved so machine load hits both alike; the ratio is batched over
sequential tokens/s measured in the same run. Writes benchmarks/results/transformers_backend.json.

    python benchmarks/bench_transformers_backend.py [--runs 3] [--prompts 8] [--max-tokens 48] [--threads N]
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

from rich.console import Console
from rich.progress import track

from ascl_data.backends.base import SamplingParams
from ascl_data.backends.transformers_backend import TransformersBackend
from provenance import write_results

PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for a good night's sleep.",
    "How do I reverse a list in Python?",
    "Explain photosynthesis to a ten-year-old.",
    "Write a haiku about autumn rain.",
    "What are the health benefits of walking every day?",
    "How do I kill a Python process that hangs?",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "What is the difference between a virus and a bacterium?",
    "Suggest a name for a bakery that sells sourdough.",
    "How many minutes are there in a week?",
    "Why is the sky blue?",
]


async def run_mode(backend: TransformersBackend, convs: list, params: SamplingParams, batched: bool) -> tuple[float, int]:
    start = time.perf_counter()
    if batched:
        out = await backend.generate(convs, None, params)
    else:
        out = [(await backend.generate([c], None, params))[0] for c in convs]
    elapsed = time.perf_counter() - start
    assert all(c.error is None for c in out), [c.error for c in out]
    return elapsed, sum(c.completion_tokens for c in out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "transformers_backend.json")
    args = ap.parse_args()
    console = Console()
    backend = TransformersBackend(batch_size=args.prompts, device="cpu", num_threads=args.threads)
    import torch

    convs = [[{"role": "user", "content": p}] for p in (PROMPTS * 4)[: args.prompts]]
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, seed=0)
    asyncio.run(run_mode(backend, convs[:2], params, batched=True))  # warm-up
    rates: dict[str, list[float]] = {"sequential": [], "batched": []}
    times: dict[str, list[float]] = {"sequential": [], "batched": []}
    tokens: dict[str, int] = {}
    load_before = os.getloadavg()
    for _ in track(range(args.runs), description="runs", console=console):
        for mode in ("sequential", "batched"):
            elapsed, n = asyncio.run(run_mode(backend, convs, params, batched=mode == "batched"))
            rates[mode].append(n / elapsed)
            times[mode].append(elapsed)
            tokens[mode] = n
    load_after = os.getloadavg()
    med = {m: statistics.median(v) for m, v in rates.items()}
    result = {
        "benchmark": "transformers_backend batched vs sequential generation",
        "model": backend.model,
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "prompts": args.prompts,
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "completion_tokens": tokens,
        "tokens_per_s": {m: [round(x, 2) for x in v] for m, v in rates.items()},
        "seconds": {m: [round(x, 2) for x in v] for m, v in times.items()},
        "median_tokens_per_s": {m: round(x, 2) for m, x in med.items()},
        "ratio_batched_over_sequential": round(med["batched"] / med["sequential"], 2),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "note": "shared 2-core machine under load from other jobs; absolute numbers are noisy, the ratio less so",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    write_results(tmp, result)
    tmp.replace(args.out)
    console.print_json(data=result)


if __name__ == "__main__":
    main()
