"""Benchmarks of `ascl-data build`; results go to benchmarks/results/build_{warm,quickstart,stream}.json.

1. `warm`: records/s of the whole pipeline (sources -> dedup -> splits -> adaptive generator -> judge -> shards,
   stats, card) when every teacher call is a cache hit: the teacher is a real tiny random Llama (SmolLM2's
   tokenizer) behind the transformers backend; a first run fills the request cache, then the build is repeated
   from scratch (`--overwrite`, the cache kept) several times and the median is reported.
2. `quickstart`: configs/quickstart.yaml as shipped (embedded SmolLM2-135M-Instruct teacher, transformers backend)
   with an empty request cache, so every teacher call is real (cold), then rebuilt from scratch with the cache kept
   (warm) `--repeats` times: the cold figure beside the warm one, same machine, same run.
3. `stream`: peak RSS of one build process while N (default 1,000,000) prompts stream from a JSONL file through
   normalisation, exact + MinHash near-duplicate removal, split assignment and the parquet writer. So that a
   million prompts are feasible on a CPU, the teacher is a trivial in-process backend that answers at once
   (benchmark only), and only `--sft-share` of the prompts (default 1%) go through the generator and judge; the
   rest are written to the rl/eval splits. The result says exactly what was streamed.

    python benchmarks/bench_build.py            # both
    python benchmarks/bench_build.py --only stream --n 200000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import datasets
import yaml
from provenance import write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
WORDS = ("river owl bread train clock map glass tea snow bee stone cloud garden lamp violin paper orbit canyon "
         "harbor lemon pixel forest copper mirror rocket planet tunnel valley marble candle").split()
KINDS = ["benign", "borderline", "harmful", "reasoning", "jailbreak"]


def write_prompts(path: Path, n: int, seed: int = 0, dup_share: float = 0.01) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(n):
            if i and rng.random() < dup_share:
                j = rng.randrange(i)
                text = f"Question {j}: tell me about " + " ".join(random.Random(j).choices(WORDS, k=12))
            else:
                text = f"Question {i}: tell me about " + " ".join(random.Random(i).choices(WORDS, k=12))
            kind = KINDS[i % len(KINDS)]
            row = {"prompt": text, "kind": kind}
            if kind == "reasoning":
                row["reference"] = str(i % 97)
            fh.write(json.dumps(row) + "\n")


# --------------------------------------------------------------------------- warm cache


def bench_warm(n: int, repeats: int) -> dict:
    from ascl_data.embedded import make_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-warm-"))
    model = make_tiny_model(tmp / "tiny")
    write_prompts(tmp / "prompts.jsonl", n, seed=1, dup_share=0.0)
    recipe = {
        "name": "bench-warm", "seed": 0, "sources": [{"path": "prompts.jsonl"}],
        "splits": {"sft": 1.0},
        "generators": [{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1, "options": {"reject_truncated": False}}],
        "teacher": {"backend": "transformers", "model": str(model), "settings": {"batch_size": 16},
                    "sampling": {"temperature": 1.0, "max_tokens": 16, "seed": 0}, "batch_size": 16,
                    "cache_dir": "cache"},
        "output": {"dir": "out", "shard_size": 64, "plots": True},
    }
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    cold, cold_s, warm, times = _cold_then_warm(tmp / "recipe.yaml", repeats)
    med = statistics.median(times)
    return {
        "what": "full build, every teacher call a cache hit (tiny random Llama, transformers backend)",
        "prompts": n, "sft_traces": warm.summary.sft, "rejected": warm.summary.rejected,
        "cold_seconds": round(cold_s, 2), "cold_teacher_calls": cold.summary.cache_misses,
        "warm_seconds_runs": [round(t, 2) for t in times], "warm_seconds_median": round(med, 2),
        "warm_records_per_s": round(n / med, 1),
    }


def _cold_then_warm(recipe_path: Path, repeats: int) -> tuple[Any, float, Any, list[float]]:
    """One cold build (empty request cache), then `repeats` warm rebuilds from scratch that must not call the teacher."""
    from ascl_data.pipeline import Build
    from ascl_data.recipe import load_recipe

    t0 = time.perf_counter()
    cold = Build(load_recipe(recipe_path), progress=False, overwrite=True).run()
    cold_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        warm = Build(load_recipe(recipe_path), progress=False, overwrite=True).run()
        times.append(time.perf_counter() - t0)
        assert warm.summary.cache_misses == 0, "a warm run must not call the teacher"
    return cold, cold_s, warm, times


def bench_quickstart(repeats: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-quickstart-"))
    recipe = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    recipe["output"]["dir"] = str(tmp / "out")
    recipe["teacher"]["cache_dir"] = str(tmp / "cache")  # empty: the first build calls the teacher every time
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    cold, cold_s, warm, times = _cold_then_warm(tmp / "recipe.yaml", repeats)
    s = cold.summary
    stats = cold.stats
    by_kind: dict[str, dict[str, dict[str, int]]] = {"sent to the teacher": {}, "accepted": {}, "consulted": {},
                                                     "rejected": {}}
    for row in stats["consultation_by_kind"]:
        by_kind["accepted"][row["kind"]] = {"n": row["traces"]}
        by_kind["consulted"][row["kind"]] = {"n": round(row["consultation_rate"] * row["traces"])}
    rejects = datasets.load_dataset(str(cold.out_dir), "rejects", split="rejects") if s.rejected else []
    for row in (r for r in rejects if r["teacher_calls"]):  # rejected after the teacher answered
        by_kind["rejected"][row["kind"]] = {"n": by_kind["rejected"].get(row["kind"], {"n": 0})["n"] + 1}
    for kind in {*by_kind["accepted"], *by_kind["rejected"]}:
        by_kind["sent to the teacher"][kind] = {"n": by_kind["accepted"].get(kind, {"n": 0})["n"]
                                                + by_kind["rejected"].get(kind, {"n": 0})["n"]}
    return {
        "by_kind": by_kind,
        "rejection_reasons": {f"{r['stage']}/{r['reason']}": r["n"] for r in stats["rejections"]},
        "what": "configs/quickstart.yaml as shipped, embedded SmolLM2-135M-Instruct (transformers backend, CPU): "
                "cold = empty request cache, every teacher call real; warm = rebuilt from scratch, cache kept",
        "prompts_in": s.prompts_in, "sft_accepted": s.sft, "stored_rl_eval": s.rl + s.eval, "rejected": s.rejected,
        "cold_seconds": round(cold_s, 1), "cold_teacher_calls": s.cache_misses,
        "cold_completion_tokens": s.completion_tokens,
        "warm_seconds_runs": [round(t, 2) for t in times], "warm_seconds_median": round(statistics.median(times), 2),
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- 1M stream

CHILD = r"""
import json, resource, sys, time
from ascl_data.backends.base import Backend, Completion
from ascl_data.pipeline import Build
from ascl_data.recipe import load_recipe

class InstantBackend(Backend):
    '''Benchmark only: answers every conversation at once, so the stream, not a model, is measured.'''
    name = "instant"
    model = "instant"
    async def generate(self, conversations, tools, params):
        return [Completion(message={"role": "assistant", "content": "Here is a short, helpful answer: 42."},
                           prompt_tokens=10, completion_tokens=8, finish_reason="stop") for _ in conversations]

t0 = time.perf_counter()
result = Build(load_recipe(sys.argv[1]), backend=InstantBackend(), progress=False, overwrite=True).run()
s = result.summary
print(json.dumps({"seconds": time.perf_counter() - t0, "prompts_in": s.prompts_in, "sft": s.sft, "rl": s.rl,
                  "eval": s.eval, "rejected": s.rejected, "by_reason": dict(s.rejected_by_reason),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_stream(n: int, sft_share: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    t0 = time.perf_counter()
    write_prompts(tmp / "prompts.jsonl", n)
    gen_s = time.perf_counter() - t0
    rest = 1.0 - sft_share
    recipe = {
        "name": "bench-stream", "seed": 0, "sources": [{"path": "prompts.jsonl"}],
        "dedup": {"exact": True, "near": True, "threshold": 0.8, "num_perm": 64},
        "splits": {"sft": sft_share, "rl": round(rest * 0.9, 6), "eval": round(1.0 - sft_share - round(rest * 0.9, 6), 6)},
        "generators": [{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1}],
        "output": {"dir": "out", "shard_size": 20_000, "plots": True},
    }
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (tmp / "child.py").write_text(CHILD)
    proc = subprocess.run([sys.executable, str(tmp / "child.py"), str(tmp / "recipe.yaml")], capture_output=True,
                          text=True, check=True)
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert child["prompts_in"] == child["sft"] + child["rl"] + child["eval"] + child["rejected"]
    out_bytes = sum(p.stat().st_size for p in (tmp / "out").rglob("*.parquet"))
    return {
        "what": (f"{n:,} prompts from one JSONL file streamed through normalisation, exact + MinHash LSH near-dup "
                 f"removal (64 permutations), seeded split assignment and the parquet writer; {sft_share:.0%} "
                 "went through the adaptive generator + judge with an instant in-process backend (benchmark only), "
                 "the rest to the rl/eval splits; stats, plots and card included"),
        "prompts": n, "input_file_mb": round((tmp / "prompts.jsonl").stat().st_size / 2**20, 1),
        "input_generation_seconds": round(gen_s, 1), **{k: v for k, v in child.items() if k != "seconds"},
        "seconds": round(child["seconds"], 1), "records_per_s": round(n / child["seconds"], 1),
        "peak_rss_mb": round(child["peak_rss_mb"], 1), "output_parquet_mb": round(out_bytes / 2**20, 1),
        "target_peak_rss_mb": 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["warm", "quickstart", "stream"])
    ap.add_argument("--n", type=int, default=1_000_000, help="prompts for the stream benchmark")
    ap.add_argument("--warm-n", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sft-share", type=float, default=0.01)
    args = ap.parse_args()
    runs = {"warm": lambda: bench_warm(args.warm_n, args.repeats),
            "quickstart": lambda: bench_quickstart(args.repeats),
            "stream": lambda: bench_stream(args.n, args.sft_share)}
    for name, bench in runs.items():
        if args.only in (None, name):
            load = [round(x, 2) for x in os.getloadavg()]
            result = bench()
            print(json.dumps(result, indent=2))
            write_results(RESULTS_DIR / f"build_{name}.json", result, load_at_start=load)  # one file per run

if __name__ == "__main__":
    main()
