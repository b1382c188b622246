"""IFPOTrainer before and after issue 22 (TRL at arm's length), in one run: step time, tokens/s and the reweighting's
own time, medians over steps.

Three variants of the same IFPO run (same model, seed, settings), in rotating order over rounds so that drift of a
shared machine's speed hits each:

- `before`: the trainer of git revision `--before` (default: the last commit before issue 22's change), which wrapped
  `_generate` and `_calculate_rewards`, recomputed GRPO's advantages from the rewards, and always had the LM head
  score the completion only on CPU;
- `after`: this tree's trainer with its defaults (TRL's advantages reweighted, TRL's LM head untouched);
- `after_lm_head`: this tree's trainer with `cpu_lm_head_completion_only: true` (the opt-in speed-up).

Per step, TRL's `step_time` and the tokens it processed are read from the log history (`bench_ifpo_step_time.py`'s
`per_step`; the first step of a run is warm-up). `ifpo/reweight_seconds` is the trainer's own work per batch (the
gathers and the reweighting). At a small learning rate every variant samples the same tokens (`identical_rollouts`).

    nice -n 10 python benchmarks/bench_ifpo_trl_surface.py --rounds 3 --steps 3 --loss-reps 5

`--loss-reps N` also times the loss's log-probability pass alone (forward and backward on a fixed batch, variants
alternating): what the LM-head opt-in changes, without the generation whose time a shared machine's load swamps.

Writes `benchmarks/results/ifpo_trl_surface_<out>.json`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from bench_ifpo_step_time import per_step  # noqa: E402
from provenance import write_results  # noqa: E402

from ascl_data.rl.config import IFPOConfig  # noqa: E402
from ascl_data.rl.toy import write_toy_dataset  # noqa: E402
from ascl_data.rulebook import load_ruleset  # noqa: E402

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("before", "after", "after_lm_head")


def trainer_module(variant: str, before: str, work: Path):
    if variant != "before":
        from ascl_data.rl import trainer

        return trainer
    path = work / "trainer_before.py"
    if not path.exists():
        path.write_text(subprocess.run(["git", "show", f"{before}:rl/trainer.py"], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    spec = importlib.util.spec_from_file_location("ascl_data.rl._trainer_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def one_run(args: argparse.Namespace, model: str, data: Path, variant: str, work: Path) -> dict:
    from transformers import AutoTokenizer

    from ascl_data.testing.tool_call_bias import tool_call_bias

    settings = IFPOConfig(
        model_name_or_path=model, dataset_name=str(data), output_dir=str(work / variant), ruleset="compact",
        max_steps=args.steps, per_device_train_batch_size=args.batch, num_generations=args.generations,
        max_completion_length=args.max_completion_length, max_tool_calling_iterations=1, learning_rate=args.lr,
        seed=args.seed, save_strategy="no", logging_steps=1, report_to="none", bf16=False,
        generation_kwargs={"sequence_bias": tool_call_bias(AutoTokenizer.from_pretrained(model))},
        cpu_lm_head_completion_only=variant == "after_lm_head",
    )
    result = trainer_module(variant, args.before, work.parent).run_ifpo(settings)
    hist = result["log_history"]
    times, tokens = per_step(hist)
    reweight = [h["ifpo/reweight_seconds"] for h in hist if "ifpo/reweight_seconds" in h][1:]
    consult = [h["ifpo/consult_rate"] for h in hist if "ifpo/consult_rate" in h]
    return {"step_seconds": times, "tokens": tokens, "reweight_seconds": reweight,
            "consult_rate": statistics.fmean(consult) if consult else None}


def loss_pass(args: argparse.Namespace, model: str, data: Path, work: Path) -> dict:
    """The loss's log-probability pass alone (`_get_per_token_logps_and_entropies`, forward and backward) of each
    variant's trainer on the same batch (`--loss-batch` sequences of `--loss-length` tokens, the last
    `max_completion_length` of them the completion), variants alternating, `--loss-reps` times."""
    trainers = {}
    for variant in VARIANTS:
        settings = IFPOConfig(
            model_name_or_path=model, dataset_name=str(data), output_dir=str(work / f"loss-{variant}"),
            ruleset="compact", per_device_train_batch_size=args.batch, num_generations=args.generations,
            max_completion_length=args.max_completion_length, bf16=False, report_to="none",
            cpu_lm_head_completion_only=variant == "after_lm_head",
        )
        trainers[variant] = trainer_module(variant, args.before, work).build_ifpo_trainer(settings)
        trainers[variant].model.train()
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, 1000, (args.loss_batch, args.loss_length), generator=gen)
    mask = torch.ones_like(ids)
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.loss_reps):
        for variant, trainer in trainers.items():
            trainer.model.zero_grad()
            start = time.perf_counter()
            logps, _, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, ids, mask, args.max_completion_length, compute_entropy=True)
            logps.sum().backward()
            seconds[variant].append(time.perf_counter() - start)
    return {"seconds": seconds, "median_seconds": {v: statistics.median(x) for v, x in seconds.items()}}


def summarise(runs: list[dict]) -> dict:
    times = [t for r in runs for t in r["step_seconds"]]
    rates = [n / t for r in runs for n, t in zip(r["tokens"], r["step_seconds"], strict=True) if t > 0]
    reweight = [t for r in runs for t in r["reweight_seconds"]]
    return {"steps_measured": len(times), "median_step_seconds": statistics.median(times),
            "median_tokens_per_second": statistics.median(rates),
            "median_reweight_seconds": statistics.median(reweight) if reweight else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="67f5494", help="git revision whose rl/trainer.py is `before`")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="training steps per run; the first is warm-up")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--max-completion-length", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default=None)
    p.add_argument("--loss-reps", type=int, default=0,
                   help="also time the loss's log-probability pass alone, this many times per variant")
    p.add_argument("--loss-batch", type=int, default=8)
    p.add_argument("--loss-length", type=int, default=700, help="prompt + completion tokens of the loss pass")
    p.add_argument("--out", default="cpu", help="suffix of the results file")
    args = p.parse_args()
    load_at_start = [round(x, 2) for x in os.getloadavg()]

    from ascl_data.embedded import make_tiny_model

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="ascl-ifpo-surface-"))
    model = str(make_tiny_model(work / "tiny"))
    data = write_toy_dataset(work / "data", load_ruleset("compact"))
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS[r % 3:] + VARIANTS[: r % 3]
        for variant in order:
            runs[variant].append(one_run(args, model, data, variant, work / f"round{r}"))
            print(f"round {r} {variant}: median step {statistics.median(runs[variant][-1]['step_seconds']):.2f}s",
                  flush=True)
    summary = {v: summarise(rs) for v, rs in runs.items()}
    loss = loss_pass(args, model, data, work) if args.loss_reps else None
    b, a, fast = (summary[v]["median_step_seconds"] for v in VARIANTS)
    import trl

    result = {
        "what": "IFPOTrainer before / after issue 22 (TRL at arm's length), same IFPO run: step time and tokens/s "
                "(medians over steps), the trainer's own reweighting time per batch",
        "setup": {
            "model": "tiny random Llama (2 layers, hidden 64) on SmolLM2's tokenizer (49k vocabulary), steered "
                     "so that both rollout modes occur",
            "device": f"{platform.machine()} CPU", "torch": torch.__version__, "trl": trl.__version__,
            "threads": torch.get_num_threads(), "rounds": args.rounds, "steps_per_run": args.steps,
            "batch": args.batch, "num_generations": args.generations,
            "max_completion_length": args.max_completion_length, "lr": args.lr, "before": args.before,
        },
        "summary": summary,
        "after_over_before_step_time": a / b,
        "after_lm_head_over_before_step_time": fast / b,
        "after_lm_head_over_after_step_time": fast / a,
        "identical_rollouts": len({json.dumps([r["tokens"] for r in rs]) for rs in runs.values()}) == 1,
        "loss_pass": loss and {
            "what": f"forward + backward of the loss's log-probabilities, {args.loss_batch} x {args.loss_length} "
                    f"tokens, the last {args.max_completion_length} the completion, medians of {args.loss_reps}",
            **loss,
            "after_lm_head_over_after": loss["median_seconds"]["after_lm_head"] / loss["median_seconds"]["after"],
            "after_lm_head_over_before": loss["median_seconds"]["after_lm_head"] / loss["median_seconds"]["before"],
        },
        "runs": runs,
    }
    path = RESULTS / f"ifpo_trl_surface_{args.out}.json"
    write_results(path, result, load_at_start)
    keys = ("summary", "after_over_before_step_time", "after_lm_head_over_before_step_time",
            "after_lm_head_over_after_step_time", "identical_rollouts", "loss_pass")
    print(json.dumps({k: result[k] for k in keys}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
