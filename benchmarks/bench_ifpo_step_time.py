"""Step time and tokens/s of IFPO against plain GRPO with the same settings: the cost of the reweighting in a real
training loop (target: < 2% overhead).

The two algorithms are one flag apart (`algorithm: grpo|ifpo` of the same IFPOTrainer), run from the same model
and seed, in alternating order over several rounds so that drift of the machine's speed hits both. Per step, TRL's
`step_time` and the tokens it processed (the increase of `num_tokens`) are read from the log history; the first step
of each run is warm-up and left out. Reported: medians over all kept steps, the IFPO/GRPO ratios of the medians, and
the time of the reweighting itself (`ifpo/reweight_seconds`) as a fraction of the IFPO step: on a machine whose speed
drifts (a shared CPU) the ratios carry that noise, the fraction does not. At a small learning rate both algorithms
sample the same tokens (`identical_rollouts`), so the two see the same work.

    python benchmarks/bench_ifpo_step_time.py            # CPU: tiny random model on SmolLM2's tokenizer, steered
                                                         # so that both rollout modes (consult/direct) occur
    python benchmarks/bench_ifpo_step_time.py --model ~/.cache/ascl-data/models/SmolLM2-135M-Instruct \\
        --bf16 --use-vllm --batch 64 --generations 8 --max-completion-length 512 --out gpu   # on a GPU

Writes `benchmarks/results/ifpo_step_time_<out>.json`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from ascl_data.rl.config import IFPOConfig
from ascl_data.rl.toy import write_toy_dataset
from ascl_data.rl.trainer import run_ifpo
from ascl_data.rulebook import load_ruleset
from provenance import write_results

RESULTS = Path(__file__).parent / "results"


def per_step(history: list[dict]) -> tuple[list[float], list[float]]:
    """(step seconds, tokens) of each logged step after the first."""
    rows = [h for h in history if "step_time" in h and "num_tokens" in h]
    times, tokens, seen = [], [], 0.0
    for i, h in enumerate(rows):
        n = float(h["num_tokens"]) - seen
        seen = float(h["num_tokens"])
        if i > 0:
            times.append(float(h["step_time"]))
            tokens.append(n)
    return times, tokens


def one_run(args: argparse.Namespace, model: str, data: Path, algorithm: str, work: Path) -> dict:
    generation_kwargs: dict | None = None
    if args.steer:
        from transformers import AutoTokenizer

        from ascl_data.testing.tool_call_bias import tool_call_bias

        generation_kwargs = {"sequence_bias": tool_call_bias(AutoTokenizer.from_pretrained(model))}
    settings = IFPOConfig(
        model_name_or_path=model, dataset_name=str(data), output_dir=str(work / algorithm), algorithm=algorithm,
        ruleset="compact", max_steps=args.steps, per_device_train_batch_size=args.batch,
        num_generations=args.generations, max_completion_length=args.max_completion_length,
        max_tool_calling_iterations=1, learning_rate=args.lr, seed=args.seed, save_strategy="no", logging_steps=1,
        report_to="none", bf16=args.bf16, use_vllm=args.use_vllm, generation_kwargs=generation_kwargs,
    )
    result = run_ifpo(settings)
    times, tokens = per_step(result["log_history"])
    hist = result["log_history"]
    consult = [h["ifpo/consult_rate"] for h in hist if "ifpo/consult_rate" in h]
    reweight = [h["ifpo/reweight_seconds"] for h in hist if "ifpo/reweight_seconds" in h][1:]  # same steps as times
    return {"step_seconds": times, "tokens": tokens, "reweight_seconds": reweight,
            "consult_rate": statistics.fmean(consult) if consult else None}


def summarise(runs: list[dict]) -> dict:
    times = [t for r in runs for t in r["step_seconds"]]
    rates = [n / t for r in runs for n, t in zip(r["tokens"], r["step_seconds"], strict=True) if t > 0]
    reweight = [t for r in runs for t in r["reweight_seconds"]]
    return {
        "steps_measured": len(times),
        "median_reweight_seconds": statistics.median(reweight) if reweight else None,
        "median_step_seconds": statistics.median(times),
        "median_tokens_per_second": statistics.median(rates),
        "mean_consult_rate": statistics.fmean(r["consult_rate"] for r in runs if r["consult_rate"] is not None),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="default: a tiny random model on SmolLM2's tokenizer (made in the work dir)")
    p.add_argument("--steer", action=argparse.BooleanOptionalAction, default=None,
                   help="bias generation towards a tool call or the end of the turn (default: on for the tiny model)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6, help="training steps per run; the first is warm-up")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--max-completion-length", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--use-vllm", action="store_true")
    p.add_argument("--work-dir", default=None)
    p.add_argument("--out", default="cpu", help="suffix of the results file")
    args = p.parse_args()

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="ascl-ifpo-steptime-"))
    if args.model is None:
        from ascl_data.embedded import make_tiny_model

        model = str(make_tiny_model(work / "tiny"))
        model_name = "tiny random Llama (2 layers, hidden 64) on SmolLM2's tokenizer"
    else:
        model = str(Path(args.model).expanduser())
        model_name = model
    if args.steer is None:
        args.steer = args.model is None and not args.use_vllm
    data = write_toy_dataset(work / "data", load_ruleset("compact"))

    runs: dict[str, list[dict]] = {"grpo": [], "ifpo": []}
    for r in range(args.rounds):
        order = ("grpo", "ifpo") if r % 2 == 0 else ("ifpo", "grpo")
        for algorithm in order:
            runs[algorithm].append(one_run(args, model, data, algorithm, work / f"round{r}"))
            print(f"round {r} {algorithm}: median step {statistics.median(runs[algorithm][-1]['step_seconds']):.3f}s")
    summary = {alg: summarise(rs) for alg, rs in runs.items()}
    g, i = summary["grpo"], summary["ifpo"]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{platform.machine()} CPU"
    result = {
        "what": "IFPO vs plain GRPO, same IFPOTrainer and settings: step time and tokens/s (median over steps)",
        "setup": {
            "model": model_name, "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "rounds": args.rounds, "steps_per_run": args.steps, "batch": args.batch,
            "num_generations": args.generations, "max_completion_length": args.max_completion_length,
            "lr": args.lr, "bf16": args.bf16, "use_vllm": args.use_vllm, "steered_tool_calls": args.steer,
        },
        "summary": summary,
        "ifpo_over_grpo_step_time": i["median_step_seconds"] / g["median_step_seconds"],
        "ifpo_over_grpo_tokens_per_second": i["median_tokens_per_second"] / g["median_tokens_per_second"],
        "ifpo_reweight_fraction_of_step": i["median_reweight_seconds"] / i["median_step_seconds"],
        "identical_rollouts": [r["tokens"] for r in runs["grpo"]] == [r["tokens"] for r in runs["ifpo"]],
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"ifpo_step_time_{args.out}.json"
    write_results(path, result)
    keys = ("summary", "ifpo_over_grpo_step_time", "ifpo_over_grpo_tokens_per_second", "ifpo_reweight_fraction_of_step")
    print(json.dumps({k: result[k] for k in keys}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
