"""Controlled experiment: plain GRPO vs IFPO from the same SFT checkpoint and seed.

Records, per training step, the consultation rate per prompt kind (benign and harmful above all), the mean reward,
and the IFPO mode weights; writes `benchmarks/results/ifpo_vs_grpo.json` and `.png`. Also records the cost of the
IFPO reweighting against the step time in `benchmarks/results/ifpo_overhead.json`.

Setup: SmolLM2-135M-Instruct (the embedded model), a short SFT on the hand-written traces of `ascl_data.rl.toy`
(harmful/borderline prompts consult, benign/reasoning answer directly) with the `compact` rule book (shorter tool
results), then GRPO and IFPO on the toy `rl` prompts of the chosen kinds with the live rule tool. The defaults are
the recorded run, sized for the shared 2-core CPU (about 160 s per RL step of 8 rollouts there, 1 thread, ~6 GB RAM
with `--grad-accum 4`; without it the logits of the 49k vocabulary took 18 GB): 20 SFT steps, then 10 RL steps each.
On a GPU run it longer, e.g. `--steps 200 --batch 32 --grad-accum 1`.

    python benchmarks/ifpo_vs_grpo.py                 # the recorded run (defaults below)
    python benchmarks/ifpo_vs_grpo.py --steps 2 --sft-steps 1 --batch 4 --grad-accum 1 --out /tmp/smoke   # smoke
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ascl_data.embedded import embedded_model_path
from ascl_data.rl.config import IFPOSettings, SFTSettings
from ascl_data.rl.data import load_split
from ascl_data.rl.ifpo import IFPOOptions
from ascl_data.rl.sft import run_sft
from ascl_data.rl.toy import write_toy_dataset
from ascl_data.rl.trainer import run_ifpo
from ascl_data.rulebook import load_ruleset

RESULTS = Path(__file__).parent / "results"


def _series(history: list[dict], key: str) -> list[float | None]:
    rows = [h for h in history if "ifpo/consult_rate" in h]
    return [h.get(key) for h in rows]


def _summary(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.fmean(vals), 4) if vals else None


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work_dir)
    ruleset = load_ruleset(args.ruleset)
    data = write_toy_dataset(work / "data", ruleset, repeat=args.sft_repeat)
    sft_dir = work / f"sft-{args.ruleset}-{args.sft_steps}steps-lr{args.sft_lr}-seed{args.seed}"  # reused if present
    t0 = time.perf_counter()
    reused = (sft_dir / "config.json").is_file()
    if not reused:
        run_sft(SFTSettings(
            model=str(embedded_model_path()), dataset=str(data), output_dir=str(sft_dir), max_steps=args.sft_steps,
            per_device_train_batch_size=1, learning_rate=args.sft_lr, max_length=1024, seed=args.seed,
        ))
    sft_seconds = round(time.perf_counter() - t0, 1) if not reused else None
    rl_rows = load_split(str(data), "rl").filter(lambda r: r["kind"] in args.kinds)
    runs = {}
    for algorithm in ("grpo", "ifpo"):
        settings = IFPOSettings(
            model=str(sft_dir), dataset=str(data), output_dir=str(work / algorithm), algorithm=algorithm,
            ruleset=args.ruleset, max_steps=args.steps, per_device_train_batch_size=args.batch // args.grad_accum,
            gradient_accumulation_steps=args.grad_accum,
            num_generations=args.generations, max_completion_length=args.max_completion_length,
            max_tool_calling_iterations=1, learning_rate=args.lr, seed=args.seed, save_final=False,
            ifpo=IFPOOptions(w_min=args.w_min, w_max=args.w_max),
        )
        t = time.perf_counter()
        torch.manual_seed(args.seed)
        result = run_ifpo(settings, train_dataset=rl_rows)
        hist = result["log_history"]
        kinds = sorted({k.rsplit("/", 1)[1] for h in hist for k in h if k.startswith("ifpo/consult_rate/")})
        runs[algorithm] = {
            "seconds": round(time.perf_counter() - t, 1),
            "step": _series(hist, "step"),
            "consult_rate": _series(hist, "ifpo/consult_rate"),
            "consult_rate_by_kind": {k: _series(hist, f"ifpo/consult_rate/{k}") for k in kinds},
            "reward": _series(hist, "reward"),
            "reward_by_kind": {k: _series(hist, f"ifpo/reward/{k}") for k in kinds},
            "reward_by_mode": {m: _series(hist, f"ifpo/reward_by_mode/{m}") for m in ("consult", "direct")},
            "weight_consult": _series(hist, "ifpo/weight/consult"),
            "weight_direct": _series(hist, "ifpo/weight/direct"),
            "step_time": _series(hist, "step_time"),
            "reweight_seconds": _series(hist, "ifpo/reweight_seconds"),
        }
    summary = {
        alg: {
            "mean_consult_rate": _summary(r["consult_rate"]),
            "consult_rate_first_half": _summary(r["consult_rate"][: len(r["consult_rate"]) // 2]),
            "consult_rate_second_half": _summary(r["consult_rate"][len(r["consult_rate"]) // 2 :]),
            "mean_consult_rate_by_kind": {k: _summary(v) for k, v in r["consult_rate_by_kind"].items()},
            "mean_reward": _summary(r["reward"]),
            "reward_second_half": _summary(r["reward"][len(r["reward"]) // 2 :]),
        }
        for alg, r in runs.items()
    }
    return {
        "setup": {
            "model": "SmolLM2-135M-Instruct (embedded) -> SFT on ascl_data.rl.toy traces",
            "ruleset": args.ruleset, "rl_kinds": args.kinds, "seed": args.seed, "steps": args.steps, "batch": args.batch,
            "grad_accum": args.grad_accum,
            "num_generations": args.generations, "max_completion_length": args.max_completion_length,
            "lr": args.lr, "sft_steps": args.sft_steps, "ifpo": {"w_min": args.w_min, "w_max": args.w_max,
                                                                  "frequency": "group"},
            "machine": f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads",
            "sft_seconds": sft_seconds,
            "sft_checkpoint_reused": reused,
        },
        "summary": summary,
        "runs": runs,
    }


def microbench(reps: int = 200) -> dict:
    """Time of the reweighting alone (weights + multiply) on synthetic batches, group mode, G=8."""
    from ascl_data.rl.ifpo import ifpo_weights

    out = {}
    gen = torch.Generator().manual_seed(0)
    for n in (64, 512, 4096, 32768):
        flags = torch.rand(n, generator=gen) < 0.3
        adv = torch.randn(n, generator=gen)
        ifpo_weights(flags, 8) * adv  # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            ifpo_weights(flags, 8) * adv
        out[str(n)] = round((time.perf_counter() - t) / reps * 1e6, 1)
    return {"rollouts_to_microseconds": out}


def overhead(result: dict) -> dict:
    ifpo = result["runs"]["ifpo"]
    rw = [v for v in ifpo["reweight_seconds"] if v is not None]
    st = [v for v in ifpo["step_time"] if v is not None]
    grpo_st = [v for v in result["runs"]["grpo"]["step_time"] if v is not None]
    return {
        "what": "IFPO reweighting (gather flags, weights, multiply) vs the whole training step, on CPU",
        "machine": result["setup"]["machine"],
        "reweight_seconds_mean": statistics.fmean(rw) if rw else None,
        "reweight_seconds_max": max(rw) if rw else None,
        "ifpo_step_seconds_mean": statistics.fmean(st) if st else None,
        "grpo_step_seconds_mean": statistics.fmean(grpo_st) if grpo_st else None,
        "reweight_fraction_of_step": (statistics.fmean(rw) / statistics.fmean(st)) if rw and st else None,
        "microbenchmark_cpu": microbench(),
        "note": "GPU timing not measured (no GPU lent to this session). Step times include generation, tool calls, "
        "judging and the optimizer step, and vary with the machine's load.",
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    colors = {"grpo": "tab:blue", "ifpo": "tab:orange"}
    for alg, r in result["runs"].items():
        steps = r["step"]
        for ax, kind in zip(axes[:2], ("benign", "harmful")):
            ys = r["consult_rate_by_kind"].get(kind, [None] * len(steps))
            pts = [(s, y) for s, y in zip(steps, ys) if y is not None]
            if pts:
                ax.plot(*zip(*pts), "o-", color=colors[alg], label=alg.upper(), alpha=0.8)
            ax.set_title(f"consultation rate: {kind} prompts")
            ax.set_ylim(-0.05, 1.05)
            ax.set_xlabel("step")
        axes[2].plot(steps, r["reward"], "o-", color=colors[alg], label=alg.upper(), alpha=0.8)
        axes[2].set_title("mean reward")
        axes[2].set_xlabel("step")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("GRPO vs IFPO from the same SFT checkpoint and seed (SmolLM2-135M, CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", default="/tmp/ascl-ifpo-vs-grpo")
    p.add_argument("--ruleset", default="compact")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--kinds", nargs="+", default=["harmful", "benign"], help="prompt kinds of the RL split to train on")
    p.add_argument("--batch", type=int, default=8, help="rollouts per optimizer step (generated together)")
    p.add_argument("--grad-accum", type=int, default=4,
                   help="micro-batches per step: the same rollouts, less memory (logits of a 49k vocabulary)")
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--max-completion-length", type=int, default=160)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--sft-steps", type=int, default=20)
    p.add_argument("--sft-lr", type=float, default=1e-4)
    p.add_argument("--sft-repeat", type=int, default=4)
    p.add_argument("--w-min", type=float, default=0.25)
    p.add_argument("--w-max", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "ifpo_vs_grpo"))
    args = p.parse_args()
    if args.batch % args.grad_accum:
        p.error(f"--batch {args.batch} does not split into --grad-accum {args.grad_accum} micro-batches")
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    plot(result, out.with_suffix(".png"))
    (out.parent / "ifpo_overhead.json").write_text(json.dumps(overhead(result), indent=2))
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
