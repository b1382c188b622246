"""The preview (`ascl-data build configs/quickstart.yaml --limit 2`) after the model is loaded, on the real path.

Each run times the model load (imports included) and then the rest; it builds the preview from a fresh scratch folder
(no request cache), through the command line in a process of its own. Two variants alternate in one process:
`forced_stop` (today: a forced tool call stops at its closing quote, `ForcedCallClosed`) and `to_max_tokens` (the
baseline: the forced turn generates to `max_tokens` and the excess is cut afterwards). Both must give the same
traces; the figure is the median wall time of each and their ratio.

    python benchmarks/bench_preview.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, write_results  # noqa: E402


_RUN = """
import sys, time
t0 = time.perf_counter()
from ascl_data.backends.consult_policy import PolicyPrompt
from ascl_data.backends import transformers_backend as tb
if sys.argv[1] == "to_max_tokens":
    PolicyPrompt.call_closed = lambda self, completion: False
init = tb.TransformersBackend.__init__
def timed_init(self, *a, **k):
    init(self, *a, **k)
    print("LOADED", time.perf_counter() - t0, file=sys.stderr, flush=True)
tb.TransformersBackend.__init__ = timed_init
from ascl_data.cli import run
sys.argv = ["ascl-data", "build", sys.argv[2], "--limit", sys.argv[3], "--quiet"]
try:
    run()
finally:
    print("DONE", time.perf_counter() - t0, file=sys.stderr, flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--recipe", default=str(ROOT / "configs" / "quickstart.yaml"))
    args = ap.parse_args()
    load = list(os.getloadavg())
    from ascl_data.embedded_adapter import adapted_model_path

    models = adapted_model_path().parent  # the converted and merged models, shared by every run's fresh home
    after_load: dict[str, list[float]] = {"forced_stop": [], "to_max_tokens": []}
    totals: dict[str, list[float]] = {"forced_stop": [], "to_max_tokens": []}
    loads: list[float] = []
    accepted: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for variant in after_load:
                home = Path(tmp) / f"{variant}-{run}"
                home.mkdir()
                (home / "models").symlink_to(models)
                proc = subprocess.run([sys.executable, "-c", _RUN, variant, args.recipe, str(args.limit)],
                                      env={**os.environ, "ASCL_DATA_HOME": str(home)}, capture_output=True,
                                      text=True, check=True)
                marks = dict(line.split() for line in proc.stderr.splitlines() if line.startswith(("LOADED", "DONE")))
                loads.append(float(marks["LOADED"]))
                totals[variant].append(round(float(marks["DONE"]), 2))
                after_load[variant].append(round(float(marks["DONE"]) - float(marks["LOADED"]), 2))
                accepted.setdefault(variant, [line for line in proc.stdout.splitlines() if "accepted" in line])
                print(variant, run, after_load[variant][-1], "s after load", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in after_load.items()}
    write_results(ROOT / "benchmarks" / "results" / "preview.json", {
        "what": f"`ascl-data build {Path(args.recipe).name} --limit {args.limit}` (embedded teacher, CPU), fresh "
                "scratch folder and request cache each run; seconds after the model is loaded, and in all (imports "
                "and model load included); baseline: forced calls generated to max_tokens",
        "median_load_seconds": round(statistics.median(loads), 2),
        "after_load_seconds": after_load,
        "total_seconds": totals,
        "median_after_load_seconds": med,
        "median_total_seconds": {k: statistics.median(v) for k, v in totals.items()},
        "ratio_forced_stop_to_baseline": round(med["forced_stop"] / med["to_max_tokens"], 3),
        "accepted_lines": accepted,
    }, load)


if __name__ == "__main__":
    main()
