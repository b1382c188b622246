"""Peak memory and speed of deduplication over a generated stream of N prompts (issue 15: flat in N, < 1 GB at 10M).

Each measurement runs in a fresh process (peak RSS is per process) over the same generated prompts: random
sentences of 8-30 words from a 20k-word vocabulary, with 1% exact repeats (re-cased, re-punctuated) and 1% near
repeats (one word of an earlier prompt replaced). Three kinds of run:

- `current`: `ascl_data.sources.dedup.Deduplicator` as the build uses it (threshold 0.8, 64 permutations);
- `floor`: the same generator with no deduplication (the interpreter, the package's imports and the generator);
- `baseline`: the Deduplicator of an earlier commit (`--baseline-commit`), loaded from git;
- `state`: memory only. The current Deduplicator's tables and spill file filled as `check` fills them for N
  distinct prompts of 20 words, with the hashes drawn directly instead of computed by MinHash (about 10x less
  CPU), so that the 10M figure can be measured on a busy machine; it mirrors `check`'s insert path.

    python benchmarks/bench_dedup.py --sizes 1000000 --baseline-commit 2174d6c
    nice python benchmarks/bench_dedup.py --sizes 10000000 --runs current

Results merge into benchmarks/results/dedup.json, keyed by run and size, so a long run can be added later; a run
also records a checkpoint every 500,000 prompts (peak RSS so far), so a run stopped early still says how far it got
and how memory grew on the way.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from provenance import write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dedup.json"
VOCAB = [f"w{i}" for i in range(20_000)]


def prompt(i: int) -> str:
    rng = random.Random(i)
    return " ".join(rng.choices(VOCAB, k=rng.randint(8, 30)))


def generated(n: int) -> Iterator[str]:
    """Prompt i; every 100th repeats an earlier one exactly (re-cased), every 100th (offset 50) nearly."""
    rng = random.Random(-1)
    for i in range(n):
        if i > 100 and i % 100 == 0:
            yield prompt(rng.randrange(i)).upper() + "?"
        elif i > 100 and i % 100 == 50:
            words = prompt(rng.randrange(i)).split()
            words[rng.randrange(len(words))] = "changed"
            yield " ".join(words)
        else:
            yield prompt(i)


def load_dedup(commit: str | None) -> type:
    if commit is None:
        from ascl_data.sources.dedup import Deduplicator

        return Deduplicator
    source = subprocess.run(["git", "show", f"{commit}:ascl_data/sources/dedup.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_dedup.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_dedup", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Deduplicator


def child(run: str, n: int, commit: str | None) -> Iterator[dict]:
    """Rows for the checkpoints (every 500,000 prompts) and the end of the run."""
    current = load_dedup(None)  # imported by every run, so that `floor` holds the same modules
    dedup = None if run == "floor" else (load_dedup(commit) if run == "baseline" else current)(threshold=0.8, num_perm=64)
    if run == "state":
        yield from fill_state(dedup, n)
        return
    counts = {"kept": 0, "duplicate": 0, "near_duplicate": 0}
    start = time.perf_counter()
    for i, text in enumerate(generated(n), 1):
        counts[(dedup.check(text) if dedup else None) or "kept"] += 1
        if i % 500_000 == 0 or i == n:
            seconds = time.perf_counter() - start
            yield {"run": run, "n": n, "reached": i, "commit": commit if run == "baseline" else None,
                   "seconds": round(seconds, 1), "us_per_prompt": round(seconds / i * 1e6, 1),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **counts}


def fill_state(dedup, n: int) -> Iterator[dict]:
    """What `check` stores for n distinct kept prompts: an exact hash, one entry per band, 18 shingle hashes."""
    import numpy as np
    import xxhash

    ref_bits = 40
    start = time.perf_counter()
    for i in range(1, n + 1):
        dedup._exact.add(xxhash.xxh64_intdigest(i.to_bytes(8, "little")))
        ref = dedup._write(np.arange(i, i + 18, dtype=np.uint32))
        for band in range(dedup.bands):
            k = xxhash.xxh64_intdigest(i.to_bytes(8, "little"), band + 1)
            if not dedup._bands.find(k, k):
                dedup._bands.insert_new(k, (k >> ref_bits) << ref_bits | ref)
        if i % 500_000 == 0 or i == n:
            seconds = time.perf_counter() - start
            yield {"run": "state", "n": n, "reached": i, "commit": None, "seconds": round(seconds, 1),
                   "us_per_prompt": round(seconds / i * 1e6, 1),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "kept": i}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--runs", nargs="+", default=["floor", "current", "baseline"],
                    choices=["floor", "current", "baseline", "state"])
    ap.add_argument("--baseline-commit", default="2174d6c", help="commit whose Deduplicator is the baseline")
    ap.add_argument("--child", nargs=2, metavar=("RUN", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        for row in child(args.child[0], int(args.child[1]), args.baseline_commit):
            print(json.dumps(row), flush=True)
        return
    for n in args.sizes:
        for run in args.runs:
            proc = subprocess.Popen([sys.executable, __file__, "--child", run, str(n), "--baseline-commit",
                                     args.baseline_commit], stdout=subprocess.PIPE, text=True)
            checkpoints: list[dict] = []
            for line in proc.stdout:
                row = json.loads(line)
                print(row, flush=True)
                checkpoints.append({k: row[k] for k in ("reached", "seconds", "peak_rss_mb")})
                results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # another run may have written
                results[f"{run}@{n}"] = {**row, "checkpoints": checkpoints}
                write_results(RESULTS, dict(sorted(results.items())))
            if proc.wait():
                raise SystemExit(f"{run}@{n} failed with exit code {proc.returncode}")


if __name__ == "__main__":
    main()
