"""Controlled experiment: plain GRPO vs IFPO (the default `IFPOOptions`) from the same SFT checkpoint, several seeds.

Records, per training step, the consultation rate per prompt kind (benign and harmful above all), the reward by
rollout mode (consult / direct), the safety reward, the format penalty and the IFPO mode weights; writes
`benchmarks/results/ifpo_vs_grpo.json` and `.png` (rewritten after every run, so an interrupted experiment keeps
what ran). Also records the cost of the IFPO reweighting against the step time in
`benchmarks/results/ifpo_overhead.json`.

The completion budget must hold a consulting rollout: TRL counts the tool result's tokens in
`max_completion_length` and, when a result would not fit, drops it and ends the rollout after the call, with no
final answer (format -1, safety 0). A consulting trace of the toy set is 252-288 tokens with the `mini` rule book
(264-279 with `compact`, 437 median with `default`), a direct one 9-50; the old cap of 160 failed every consulting
rollout and both algorithms learnt to stop consulting. The cap is now 320.

Setup: SmolLM2-135M-Instruct (the embedded model), a short SFT on the hand-written traces of `ascl_data.rl.toy`
(harmful/borderline prompts consult, benign/reasoning answer directly), then, per seed, GRPO and IFPO in turn on the
toy `rl` prompts of the chosen kinds with the live rule tool. Sized for a CPU: the `mini` rule book (`compact` cut to
the toy prompts' categories: a 621-token prompt instead of 730) and LoRA on the top 4 layers (backward stops there:
`lora_settings` turns off gradient checkpointing, whose TRL default sends it through all 30 layers).

One RL step of 8 rollouts on one core (`rl_step_profile.py`, `results/rl_step_profile_cpu.json`): from the
all-weights SFT checkpoint (below; 2 of 8 rollouts consult, longest 115 tokens) 84-91 CPU-s (generation 51, loss
forward 31, backward 7), against 165-182 with TRL's defaults (gradient checkpointing, and an LM head that scored the
624 prompt positions too: backward 90); from the base model, whose rollouts run to the 320 cap, 123 s (generation 75,
loss forward 33, backward 15) against 219 s. Generation runs at a plain `model.generate`'s speed (~190 ms per
decode step of the batch). The first attempt's 673 s per step also had two processes of two threads each on the two
cores; `--parallel` now gives each process its share. So an hour of this CPU, two cores free, holds 3 seeds x 2
algorithms x about 10-13 steps with `--parallel`; the load of other jobs cuts that.

The SFT checkpoint must consult for the experiment to show anything: the default 6-step LoRA SFT does not learn the
call (teacher-forced P(opening a rule-tool call) < 0.001 on every harmful prompt, as for the base model).
`--sft-lora-layers 0 --sft-batch 2` (6 steps) gives 0.33-0.65 on harmful, 0.06-0.37 on benign prompts, but at
temperature 1 half its call attempts are malformed JSON (plain text, format -0.5) and after a tool result it echoes
`<tool_response>` instead of answering, so consulting earns no more than answering directly: more SFT is needed.

On a GPU run it longer, e.g. `--steps 200 --batch 32 --grad-accum 1 --lora-layers 0`. `--base-model tiny` runs the
same pipeline on a 2-layer model (fast, nothing to learn). `--resume` keeps the finished runs of the JSON and runs the
rest.

    python benchmarks/ifpo_vs_grpo.py                 # the recorded run (defaults below)
    python benchmarks/ifpo_vs_grpo.py --steps 2 --sft-steps 1 --batch 4 --grad-accum 1 --seeds 0 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import platform
import queue
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import yaml

from ascl_data.embedded import embedded_model_path, make_tiny_model
from ascl_data.rl.config import ASCLSFTConfig, IFPOConfig
from ascl_data.rl.data import load_split
from ascl_data.rl.environment import consulted
from ascl_data.rl.ifpo import IFPOOptions
from ascl_data.rl.sft import run_sft
from ascl_data.rl.toy import ITEMS, write_toy_dataset
from ascl_data.rl.trainer import build_ifpo_trainer
from ascl_data.rulebook import load_ruleset
from provenance import write_results

RESULTS = Path(__file__).parent / "results"
ALGORITHMS = ("grpo", "ifpo")
MODES = ("consult", "direct")


def _series(history: list[dict], key: str) -> list[float | None]:
    rows = [h for h in history if "ifpo/consult_rate" in h]
    return [h.get(key) for h in rows]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.fmean(vals), 4) if vals else None


def mini_ruleset(work: Path) -> Path:
    """A cut of the `compact` rule book for CPU runs, written to `work`: only the categories of the toy prompts, one
    rule each, the title as each category's description. The tool schema (in every prompt) and each tool result
    shrink, so a rollout costs about half the tokens; the rules themselves are `compact`'s."""
    book = load_ruleset("compact")
    used = {item[1] for item in ITEMS if item[1] is not None}
    rules = [next(r for r in book.rules if r.category == c.id) for c in book.categories if c.id in used]
    cut = book.model_copy(update={
        "name": "ascl-mini", "description": "compact, cut to the toy prompts' categories (benchmarks/ifpo_vs_grpo.py)",
        "categories": [c.model_copy(update={"description": c.title}) for c in book.categories if c.id in used],
        "rules": rules,
    })
    path = work / "mini-rules.yaml"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cut.model_dump(mode="json", exclude_none=True), sort_keys=False))
    return path


def lora_settings(args: argparse.Namespace, model: str, layers: int | None = None) -> dict:
    """LoRA on the projections of the top `layers` (default `--lora-layers`) layers (0: train all weights). Backward
    then stops at the lowest adapted layer, which on this CPU is most of a step's cost, provided gradient
    checkpointing is off: TRL's default (on) makes the input embeddings require grad, so backward ran through every
    layer (2x the RL step, results/rl_step_profile_cpu.json). The short sequences' activations fit without it."""
    layers = args.lora_layers if layers is None else layers
    if not layers:
        return {}
    from transformers import AutoConfig

    n = AutoConfig.from_pretrained(model).num_hidden_layers
    projections = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                   "mlp.up_proj", "mlp.down_proj")
    targets = [f"layers.{i}.{p}" for i in range(max(0, n - layers), n) for p in projections]
    return {"use_peft": True, "lora_r": args.lora_r, "lora_alpha": 2 * args.lora_r, "lora_dropout": 0.0,
            "lora_target_modules": targets, "gradient_checkpointing": False}


def sft_checkpoint(args: argparse.Namespace, data: Path) -> tuple[Path, float | None]:
    """The one SFT checkpoint every RL run starts from (reused if already there; LoRA adapters merged)."""
    work = Path(args.work_dir)
    sft_dir = work / (f"sft-{args.base_model}-{Path(args.ruleset).stem}-{args.sft_steps}steps-lr{args.sft_lr}"
                      f"-b{args.sft_batch}-lora{args.sft_lora_layers}-seed0")
    if (sft_dir / "config.json").is_file():
        return sft_dir, None
    base = str(embedded_model_path() if args.base_model == "smollm2" else make_tiny_model(work / "tiny"))
    t0 = time.perf_counter()
    run_sft(ASCLSFTConfig(
        model_name_or_path=base, dataset_name=str(data), output_dir=str(sft_dir), max_steps=args.sft_steps,
        per_device_train_batch_size=args.sft_batch, learning_rate=args.sft_lr, max_length=1024, seed=0, bf16=False,
        save_strategy="no", logging_steps=1, report_to="none", **lora_settings(args, base, args.sft_lora_layers),
    ))
    return sft_dir, round(time.perf_counter() - t0, 1)


def trace_tokens_by_mode(ruleset: str) -> dict[str, dict[str, int]]:
    """Completion tokens (tool call, tool result and answer) of the toy SFT traces, by mode, with the real
    tokenizer and chat template: what a rollout that imitates them needs of `max_completion_length`."""
    from transformers import AutoTokenizer

    from ascl_data.rl.toy import _trace
    from ascl_data.rule_tool import RuleTool

    tok = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    book = load_ruleset(ruleset)
    tool = RuleTool(book)
    lengths: dict[str, list[int]] = {m: [] for m in MODES}
    for i, item in enumerate(ITEMS):
        trace = _trace(i, item, book, tool)
        msgs = [m.model_dump(exclude_none=True) for m in trace.messages]
        prompt = tok.apply_chat_template(msgs[:2], tools=[tool.schema()], tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(msgs, tools=[tool.schema()], tokenize=False)
        n = len(tok(full)["input_ids"]) - len(tok(prompt)["input_ids"])
        lengths["consult" if trace.consulted else "direct"].append(n)
    return {m: {"min": min(v), "median": int(statistics.median(v)), "max": max(v)} for m, v in lengths.items()}


def cap_check(args: argparse.Namespace, data: Path, rows, caps: tuple[int, ...] = (160, 320)) -> dict:
    """One batch of rollouts through the real trainer at each cap, from a tiny random model steered to pick between
    a rule-tool call and ending its turn (`ascl_data.testing.tool_call_bias`): per mode, how many rollouts kept their
    tool result and what the format reward gave them. Cheap evidence for the cap, without a trained model."""
    from transformers import AutoTokenizer

    from ascl_data.rl.environment import messages_of
    from ascl_data.testing.tool_call_bias import tool_call_bias

    model = make_tiny_model(Path(args.work_dir) / "tiny")
    bias = tool_call_bias(AutoTokenizer.from_pretrained(model))
    out = {}
    for cap in caps:
        settings = IFPOConfig(
            model_name_or_path=str(model), dataset_name=str(data), output_dir=str(Path(args.work_dir) / f"cap{cap}"),
            algorithm="grpo", ruleset=args.ruleset, max_steps=1, per_device_train_batch_size=args.batch,
            num_generations=args.generations, max_completion_length=cap, max_tool_calling_iterations=1,
            seed=0, bf16=False, save_strategy="no", report_to="none", generation_kwargs={"sequence_bias": bias},
        )
        trainer = build_ifpo_trainer(settings, train_dataset=rows)
        trainer.model.train()
        torch.manual_seed(0)
        n_prompts = args.batch // args.generations
        inputs = [dict(rows[i % len(rows)]) for i in range(n_prompts) for _ in range(args.generations)]
        trainer._generate_and_score_completions(inputs)
        rewards = trainer.rollouts.rewards_per_func.cpu()  # (rollouts, [safety, reasoning, format])
        per_mode = {}
        for mode in MODES:
            idx = [i for i, c in enumerate(trainer.rollouts.completions) if consulted(c) == (mode == "consult")]
            kept = [any(m.get("role") == "tool" for m in messages_of(trainer.rollouts.completions[i])) for i in idx]
            per_mode[mode] = {
                "rollouts": len(idx),
                "kept_tool_result": sum(kept),
                "format_reward_mean": round(rewards[idx, 2].mean().item(), 3) if idx else None,
            }
        out[str(cap)] = per_mode
    return out


def run_series(hist: list[dict], seconds: float, finished: bool) -> dict:
    """A run's per-step series, read from TRL's log history."""
    kinds = sorted({k.rsplit("/", 1)[1] for h in hist for k in h if k.startswith("ifpo/consult_rate/")})
    return {
        "finished": finished,
        "seconds": round(seconds, 1),
        "step": _series(hist, "step"),
        "consult_rate": _series(hist, "ifpo/consult_rate"),
        "consult_rate_by_kind": {k: _series(hist, f"ifpo/consult_rate/{k}") for k in kinds},
        "reward": _series(hist, "reward"),
        "reward_by_kind": {k: _series(hist, f"ifpo/reward/{k}") for k in kinds},
        "reward_by_mode": {m: _series(hist, f"ifpo/reward_by_mode/{m}") for m in MODES},
        "safety_reward": _series(hist, "rewards/safety_reward/mean"),
        "format_reward": _series(hist, "rewards/format_reward/mean"),
        "clipped_ratio": _series(hist, "completions/clipped_ratio"),
        "advantage_consult": _series(hist, "ifpo/advantage/consult"),
        "advantage_direct": _series(hist, "ifpo/advantage/direct"),
        "step_time": _series(hist, "step_time"),
        "reweight_seconds": _series(hist, "ifpo/reweight_seconds"),
    }


def rl_rows(data: Path, kinds: list[str]):
    """The `rl` split's prompts of the chosen kinds."""
    return load_split(str(data), "rl").filter(lambda r: r["kind"] in kinds)


def algorithm_worker(args: argparse.Namespace, sft_dir: Path, data: Path, algorithm: str, seeds: list[int],
                     updates) -> None:
    """`--parallel`: one algorithm's runs, seed after seed, in a process of its own; each step's series goes to the
    parent through `updates` as (algorithm, seed, series). Each process takes its share of the cores: torch's
    default (all of them, in each process) oversubscribes the CPU, and its threads then wait on each other."""
    torch.set_num_threads(max(1, torch.get_num_threads() // len(ALGORITHMS)))
    for seed in seeds:
        def report(series: dict, seed: int = seed) -> None:
            updates.put((algorithm, seed, series))

        report(rl_run(args, sft_dir, data, algorithm, seed, on_step=report))


def rl_config(args: argparse.Namespace, sft_dir: Path, data: Path, algorithm: str, seed: int,
              **overrides: Any) -> IFPOConfig:
    """The trainer settings of one RL run (also what `rl_step_profile.py` times, with its `overrides`)."""
    return IFPOConfig(
        model_name_or_path=str(sft_dir), dataset_name=str(data),
        output_dir=str(Path(args.work_dir) / f"{algorithm}-{seed}"), algorithm=algorithm, ruleset=args.ruleset,
        max_steps=args.steps, per_device_train_batch_size=args.batch // args.grad_accum,
        gradient_accumulation_steps=args.grad_accum, num_generations=args.generations,
        max_completion_length=args.max_completion_length, max_tool_calling_iterations=1, learning_rate=args.lr,
        beta=0.0, seed=seed, bf16=False, save_strategy="no", logging_steps=1, report_to="none",
        # the opt-in CPU LM-head speed-up (docs/training.md) unless `overrides` say otherwise
        **{"cpu_lm_head_completion_only": True, **lora_settings(args, str(sft_dir)), **overrides},
    )


def rl_run(args: argparse.Namespace, sft_dir: Path, data: Path, algorithm: str, seed: int,
           on_step: Callable[[dict], None]) -> dict:
    """One RL run (IFPO with the default `IFPOOptions`); its per-step series, also handed to `on_step` after every
    step so that a run stopped halfway keeps its steps. The trained model is not saved: only the series matter."""
    from transformers import TrainerCallback

    config = rl_config(args, sft_dir, data, algorithm, seed)
    t = time.perf_counter()

    class EachStep(TrainerCallback):
        def on_log(self, _args, state, _control, **_kwargs) -> None:
            on_step(run_series(state.log_history, time.perf_counter() - t, finished=False))

    torch.manual_seed(seed)
    trainer = build_ifpo_trainer(config, train_dataset=rl_rows(data, args.kinds))
    trainer.add_callback(EachStep())
    trainer.train()
    return run_series(trainer.state.log_history, time.perf_counter() - t, finished=True)


def summarise(runs: dict[str, dict[str, dict]]) -> dict:
    """Per algorithm, over the seeds that ran: consult rate by kind in the first and the last step, and means."""
    out = {}
    for alg, by_seed in runs.items():
        rs = list(by_seed.values())
        kinds = sorted({k for r in rs for k in r["consult_rate_by_kind"]})
        out[alg] = {
            "seeds": sorted(by_seed),
            "seeds_finished": sorted(s for s, r in by_seed.items() if r["finished"]),
            "consult_rate_by_kind_first_step": {
                k: _mean([r["consult_rate_by_kind"].get(k, [None])[0] for r in rs]) for k in kinds
            },
            "consult_rate_by_kind_last_step": {
                k: _mean([r["consult_rate_by_kind"].get(k, [None])[-1] for r in rs]) for k in kinds
            },
            "consult_rate_by_kind_mean": {
                k: _mean([v for r in rs for v in r["consult_rate_by_kind"].get(k, [])]) for k in kinds
            },
            "reward_by_mode_mean": {m: _mean([v for r in rs for v in r["reward_by_mode"][m]]) for m in MODES},
            "safety_reward_mean": _mean([v for r in rs for v in r["safety_reward"]]),
            "safety_reward_last_step": _mean([r["safety_reward"][-1] for r in rs if r["safety_reward"]]),
            "format_reward_mean": _mean([v for r in rs for v in r["format_reward"]]),
        }
    return out


def overhead(runs: dict[str, dict[str, dict]], machine: str) -> dict:
    rw = [v for r in runs.get("ifpo", {}).values() for v in r["reweight_seconds"] if v is not None]
    st = [v for r in runs.get("ifpo", {}).values() for v in r["step_time"] if v is not None]
    grpo_st = [v for r in runs.get("grpo", {}).values() for v in r["step_time"] if v is not None]
    return {
        "what": "IFPO rebalancing (gather flags and advantages, weights, rebalance) vs the whole training step, CPU",
        "machine": machine,
        "reweight_seconds_median": statistics.median(rw) if rw else None,
        "ifpo_step_seconds_median": statistics.median(st) if st else None,
        "grpo_step_seconds_median": statistics.median(grpo_st) if grpo_st else None,
        "reweight_fraction_of_step": (statistics.median(rw) / statistics.median(st)) if rw and st else None,
        "microbenchmark_cpu": microbench(),
        "note": "GPU timing not measured (no GPU lent to this session). Step times include generation, tool calls, "
        "judging and the optimizer step, and vary with the machine's load.",
    }


def microbench(reps: int = 200) -> dict:
    """Time of the rebalancing alone (default options, EMA value given) on synthetic batches, G=8."""
    from ascl_data.rl.ifpo import rebalance_advantages

    out = {}
    gen = torch.Generator().manual_seed(0)
    for n in (64, 512, 4096, 32768):
        flags = torch.rand(n, generator=gen) < 0.3
        adv = torch.randn(n, generator=gen)
        rebalance_advantages(adv, flags, 8, IFPOOptions(), 0.3)  # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            rebalance_advantages(adv, flags, 8, IFPOOptions(), 0.3)
        out[str(n)] = round((time.perf_counter() - t) / reps * 1e6, 1)
    return {"rollouts_to_microseconds": out}


def plot(runs: dict[str, dict[str, dict]], path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("consult rate: harmful", lambda r: r["consult_rate_by_kind"].get("harmful")),
              ("consult rate: benign", lambda r: r["consult_rate_by_kind"].get("benign")),
              ("reward of consulting rollouts", lambda r: r["reward_by_mode"]["consult"]),
              ("reward of direct rollouts", lambda r: r["reward_by_mode"]["direct"]),
              ("safety reward", lambda r: r["safety_reward"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    colors = {"grpo": "tab:blue", "ifpo": "tab:orange"}
    for alg, by_seed in runs.items():
        for i, (seed, r) in enumerate(sorted(by_seed.items())):
            for ax, (title, get) in zip(axes, panels):
                ys = get(r) or []
                pts = [(s, y) for s, y in zip(r["step"], ys) if y is not None]
                if pts:
                    ax.plot(*zip(*pts), "o-", color=colors[alg], alpha=0.7, lw=1,
                            label=alg.upper() if i == 0 else None)
                ax.set_title(title, fontsize=10)
                ax.set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend()
    for ax in axes[:2]:
        ax.set_ylim(-0.05, 1.05)
    fig.suptitle(f"GRPO vs IFPO (default options) from one SFT checkpoint, one line per seed ({model})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", default="/tmp/ascl-ifpo-vs-grpo")
    p.add_argument("--base-model", choices=["smollm2", "tiny"], default="smollm2",
                   help="SmolLM2-135M-Instruct, or a random 2-layer model on its tokenizer (fast, for smoke runs)")
    p.add_argument("--ruleset", default="mini",
                   help="rule book of the traces and the rollouts' tool: a name, a YAML file, or mini (compact cut "
                   "to the toy prompts' categories: shorter prompts and tool results)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--kinds", nargs="+", default=["harmful", "benign"], help="prompt kinds of the RL split to train on")
    p.add_argument("--batch", type=int, default=8, help="rollouts per optimizer step (generated together)")
    p.add_argument("--grad-accum", type=int, default=2,
                   help="micro-batches per step: the same rollouts, less memory (logits of a 49k vocabulary)")
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--max-completion-length", type=int, default=320,
                   help="tokens per rollout, the tool result included: must hold a consulting rollout")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--sft-steps", type=int, default=6)
    p.add_argument("--sft-lr", type=float, default=1e-3)
    p.add_argument("--sft-repeat", type=int, default=4)
    p.add_argument("--sft-batch", type=int, default=1)
    p.add_argument("--sft-lora-layers", type=int,
                   help="LoRA layers of the SFT (default: --lora-layers; 0: all weights, as rl/examples does)")
    p.add_argument("--lora-layers", type=int, default=4,
                   help="SFT and RL train LoRA adapters on the top N layers only (0: all weights)")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--cap-check", action="store_true",
                   help="only run one batch at max_completion_length 160 and 320 from a steered tiny model; writes "
                   "results/ifpo_cap_check.json")
    p.add_argument("--out", default=str(RESULTS / "ifpo_vs_grpo"))
    p.add_argument("--parallel", action="store_true",
                   help="run GRPO and IFPO at once, in two processes (each over the seeds in turn): both algorithms "
                   "see the same machine load, and on a shared CPU each gets its own share")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of an earlier --out JSON with the same settings; run the others")
    args = p.parse_args()
    if args.sft_lora_layers is None:
        args.sft_lora_layers = args.lora_layers
    if args.batch % args.grad_accum:
        p.error(f"--batch {args.batch} does not split into --grad-accum {args.grad_accum} micro-batches")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.ruleset == "mini":
        args.ruleset = str(mini_ruleset(Path(args.work_dir)))
    data = write_toy_dataset(Path(args.work_dir) / "data", load_ruleset(args.ruleset), repeat=args.sft_repeat)
    if args.cap_check:
        check = {
            "trace_completion_tokens_by_mode": trace_tokens_by_mode(args.ruleset),
            "by_cap": cap_check(args, data, rl_rows(data, args.kinds)),
        }
        write_results((out.parent / "ifpo_cap_check.json"), check)
        print(json.dumps(check, indent=2))
        return
    sft_dir, sft_seconds = sft_checkpoint(args, data)
    machine = f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads"
    setup = {
        "model": f"{args.base_model} -> SFT on ascl_data.rl.toy traces",
        **{k: v for k, v in vars(args).items() if k not in ("out", "work_dir")},
        "ifpo": asdict(IFPOOptions()), "machine": machine, "sft_seconds": sft_seconds,
        "trace_completion_tokens_by_mode": trace_tokens_by_mode(args.ruleset),
    }
    runs: dict[str, dict[str, dict]] = {alg: {} for alg in ALGORITHMS}
    if args.resume and out.with_suffix(".json").is_file():
        old = json.loads(out.with_suffix(".json").read_text())
        free = ("seeds", "resume", "parallel", "machine", "sft_seconds")
        fixed = [k for k in setup if k not in free and old["setup"].get(k) != setup[k]]
        if fixed:
            p.error(f"--resume: {out.with_suffix('.json')} was run with other settings: {', '.join(fixed)}")
        setup["sft_seconds"] = old["setup"].get("sft_seconds")
        runs = {a: {s: r for s, r in old["runs"].get(a, {}).items() if r["finished"]} for a in ALGORITHMS}

    def save(alg: str, seed: int, series: dict) -> None:
        runs[alg][str(seed)] = series
        done = {a: r for a, r in runs.items() if r}
        result = {"setup": setup, "summary": summarise(done), "runs": done}
        write_results(out.with_suffix(".json"), result)
        plot(done, out.with_suffix(".png"), args.base_model)
        if series["finished"]:
            print(alg, seed, json.dumps(summarise({alg: {str(seed): series}})[alg]), flush=True)

    todo = {alg: [s for s in args.seeds if str(s) not in runs[alg]] for alg in ALGORITHMS}
    if args.parallel:
        ctx = multiprocessing.get_context("spawn")
        updates = ctx.Queue()
        procs = [ctx.Process(target=algorithm_worker, args=(args, sft_dir, data, alg, todo[alg], updates))
                 for alg in ALGORITHMS if todo[alg]]
        for proc in procs:
            proc.start()
        while any(proc.is_alive() for proc in procs) or not updates.empty():
            try:
                save(*updates.get(timeout=10))
            except queue.Empty:
                continue
        failed = [proc.name for proc in procs if proc.exitcode]
        if failed:
            raise SystemExit(f"{len(failed)} of the algorithm processes failed; finished runs are in {out}.json")
    else:
        for seed in args.seeds:  # alternate the algorithms so the machine's load hits both alike
            for alg in ALGORITHMS:
                if seed in todo[alg]:
                    save(alg, seed, rl_run(args, sft_dir, data, alg, seed, on_step=functools.partial(save, alg, seed)))
    write_results((out.parent / "ifpo_overhead.json"), overhead(runs, machine))


if __name__ == "__main__":
    main()
