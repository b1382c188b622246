"""The preview (`ascl-data build configs/quickstart.yaml --limit 2`) after the model is loaded, on the real path.

The embedded teacher is loaded once (timed apart); then each run builds the preview from a fresh scratch folder
(no request cache), through `Build(preview_recipe(...))` as `--limit` does. Two variants alternate in one process:
`forced_stop` (today: a forced tool call stops at its closing quote, `ForcedCallClosed`) and `to_max_tokens` (the
baseline: the forced turn generates to `max_tokens` and the excess is cut afterwards). Both must give the same
traces; the figure is the median wall time of each and their ratio.

    python benchmarks/bench_preview.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, write_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--recipe", default=str(ROOT / "configs" / "quickstart.yaml"))
    args = ap.parse_args()
    load = list(os.getloadavg())

    from ascl_data.backends.consult_policy import PolicyPrompt
    from ascl_data.backends.transformers_backend import TransformersBackend
    from ascl_data.pipeline import Build
    from ascl_data.pipeline.preview import preview_recipe
    from ascl_data.recipe import load_recipe
    from ascl_data.embedded_adapter import adapted_model_path

    recipe = load_recipe(args.recipe)
    models = adapted_model_path().parent  # the converted and merged models, shared by every run's fresh home
    start = time.perf_counter()
    backend = TransformersBackend(**recipe.teacher.settings.model_dump(exclude_unset=True))
    load_s = time.perf_counter() - start
    closed = PolicyPrompt.call_closed
    walls: dict[str, list[float]] = {"forced_stop": [], "to_max_tokens": []}
    traces: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for variant in walls:
                home = Path(tmp) / f"{variant}-{run}"
                home.mkdir()
                (home / "models").symlink_to(models)
                os.environ["ASCL_DATA_HOME"] = str(home)
                PolicyPrompt.call_closed = closed if variant == "forced_stop" else (lambda self, completion: False)
                t = time.perf_counter()
                result = Build(preview_recipe(recipe, args.limit), backend=backend, overwrite=True, progress=False).run()
                walls[variant].append(round(time.perf_counter() - t, 2))
                import datasets

                rows = datasets.load_dataset(str(result.out_dir), split="sft").to_list()
                traces.setdefault(variant, [(r["prompt_id"], str(r["messages"])) for r in rows])
                print(variant, run, walls[variant][-1], "s", file=sys.stderr, flush=True)
    PolicyPrompt.call_closed = closed
    med = {k: statistics.median(v) for k, v in walls.items()}
    write_results(ROOT / "benchmarks" / "results" / "preview.json", {
        "what": f"`build --limit {args.limit}` of {Path(args.recipe).name} after the model is loaded (embedded "
                "teacher, CPU), fresh scratch folder each run; baseline: forced calls generated to max_tokens",
        "model_load_seconds": round(load_s, 2),
        "runs": walls,
        "median_seconds": med,
        "ratio_forced_stop_to_baseline": round(med["forced_stop"] / med["to_max_tokens"], 3),
        "same_traces": traces["forced_stop"] == traces["to_max_tokens"],
        "accepted_traces": len(traces["forced_stop"]),
    }, load)


if __name__ == "__main__":
    main()
