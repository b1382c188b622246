"""What the vLLM server's prefix caching buys an ASCL build: the same conversations against two vLLM CPU servers
of the embedded SmolLM2, one with prefix caching (vLLM's default) and one with `--no-enable-prefix-caching`.

Why: every teacher request repeats the adaptive system prompt and the rule tool's schema (about 700 of a first turn's
prompt tokens, `request_tokens.py`), and a consult's second turn repeats the whole first turn. A server that caches
the shared prefix computes it once. Both servers are up for the whole run and the runs alternate between them (the
idle one costs no CPU), so the machine's load hits both alike; each run is the bare loop of
`bench_build_throughput.py` (the real rule tool, one semaphore) on prompts of its own (the same for both servers),
so that only the system prompt and tool schema repeat between runs. Reported: medians of the
wall times and completion tokens/s, and the median paired ratio (cached / uncached throughput).

    ASCL_VLLM_VENV=.venv-vllm python benchmarks/bench_prefix_caching.py --prompts 32 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_build_throughput import bare, load, recipe_dict, write_source  # noqa: E402
from provenance import write_results

RESULTS = Path(__file__).parent / "results" / "prefix_caching.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    args.max_in_flight = None

    from ascl_data.embedded import embedded_model_path
    from ascl_data.backends.vllm_backend import cpu_dtype
    from ascl_data.testing.vllm_server import SERVED_MODEL_NAME, VLLMServer

    load_at_start = [round(x, 1) for x in os.getloadavg()]
    servers = {"cached": VLLMServer(embedded_model_path()),
               "uncached": VLLMServer(embedded_model_path(), extra_args=["--no-enable-prefix-caching"])}
    work = Path(tempfile.mkdtemp(prefix="bench-prefix-"))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        for server in servers.values():
            server.start()
        def recipe(i: int, n: int, name: str):  # run i's own prompts: only the system prompt and tools repeat
            (work / f"src-{i}").mkdir(exist_ok=True)
            source = write_source(work / f"src-{i}", n, first=10_000 * (i + 1))
            return load(recipe_dict(source, work / f"out-{name}", servers[name].base_url, SERVED_MODEL_NAME, args),
                        work)

        for name, s in servers.items():  # untimed: first requests, imports
            asyncio.run(bare(recipe(-1, 4, name), s.base_url, SERVED_MODEL_NAME, args.concurrency))
        for i in range(args.runs):
            for name in (("cached", "uncached") if i % 2 == 0 else ("uncached", "cached")):
                tokens, wall, n = asyncio.run(bare(recipe(i, args.prompts, name), servers[name].base_url,
                                                   SERVED_MODEL_NAME, args.concurrency))
                row = {"prompts": n, "wall_s": round(wall, 3), "completion_tokens": tokens,
                       "tok_per_s": round(tokens / wall, 1)}
                runs[name].append(row)
                print(f"run {i} {name:8s}: {row}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    paired = [c["tok_per_s"] / u["tok_per_s"] for c, u in zip(runs["cached"], runs["uncached"])]
    result = {
        "benchmark": "bare loop of bench_build_throughput against two vLLM CPU servers, prefix caching on / off",
        "server": f"vLLM CPU, SmolLM2-135M-Instruct, dtype {cpu_dtype()}",
        "settings": {k: getattr(args, k) for k in ("prompts", "concurrency", "max_tokens", "runs")},
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "runs": runs,
        "median_wall_s": {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()},
        "median_tok_per_s": {k: statistics.median(r["tok_per_s"] for r in v) for k, v in runs.items()},
        "median_paired_speedup": round(statistics.median(paired), 3),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, result)
    print(json.dumps({k: result[k] for k in ("median_wall_s", "median_tok_per_s", "median_paired_speedup")}))


if __name__ == "__main__":
    main()
