"""Where one RL step of the real trainer spends its time: generation (first turn, and after the tool result), the
tool loop, the rewards, the loss forward, backward and the rest, with the tokens each generate call made; then a
plain `model.generate` with a KV cache on the same model, prompts and batch, for ms per generated token.

The step is `ifpo_vs_grpo.py`'s (same `rl_config`), run for one optimizer step through `trainer.train()`; phases are
timed by wrapping the trainer's methods on the instance, so nothing in the package changes. `--stock` puts back
TRL's defaults (gradient checkpointing; the LM head scoring the prompt positions on CPU) for a before/after pair; on a
shared machine compare CPU seconds. Measured pairs: `benchmarks/results/rl_step_profile_cpu.json`.

    python benchmarks/rl_step_profile.py --model /tmp/ascl-ifpo-vs-grpo/sft-... --threads 1 --out /tmp/prof.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
import ifpo_vs_grpo as exp  # noqa: E402
from provenance import write_results  # noqa: E402

from ascl_data.embedded import embedded_model_path, make_tiny_model  # noqa: E402
from ascl_data.rl.data import load_split  # noqa: E402
from ascl_data.rl.toy import write_toy_dataset  # noqa: E402
from ascl_data.rl.trainer import build_ifpo_trainer  # noqa: E402
from ascl_data.rulebook import load_ruleset  # noqa: E402


def instrument(trainer: Any) -> dict[str, Any]:
    """Wrap the trainer's phase methods on the instance; returns the dict they fill (wall and CPU seconds, calls,
    tokens). CPU seconds compare runs on a shared machine: wall seconds carry the other jobs' load."""
    record: dict[str, Any] = {"seconds": defaultdict(float), "cpu_seconds": defaultdict(float),
                              "calls": defaultdict(int), "generate": []}

    def timed(obj: Any, name: str, key: str, after=None) -> None:
        inner = getattr(obj, name)

        def wrapper(*a, **kw):
            t, cpu = time.perf_counter(), time.process_time()
            out = inner(*a, **kw)
            dt = time.perf_counter() - t
            record["seconds"][key] += dt
            record["cpu_seconds"][key] += time.process_time() - cpu
            record["calls"][key] += 1
            if after is not None:
                after(a, out, dt)
            return out

        setattr(obj, name, wrapper)

    def gen_stats(a, out, dt) -> None:
        prompt_ids, completion_ids = a[0], out[0]
        new = [len(c) for c in completion_ids]
        record["generate"].append({
            "rollouts": len(prompt_ids), "max_prompt_tokens": max(len(p) for p in prompt_ids),
            "mean_prompt_tokens": round(sum(len(p) for p in prompt_ids) / len(prompt_ids), 1),
            "generated_tokens": sum(new), "max_generated": max(new), "seconds": round(dt, 2),
            "ms_per_decode_step": round(1000 * dt / max(1, max(new)), 1),
        })
        record.setdefault("first_prompt_ids", prompt_ids)

    timed(trainer, "_generate_single_turn", "generate (all calls)", gen_stats)
    timed(trainer, "_tool_call_loop", "tool loop (incl. post-tool generate)")
    timed(trainer, "_calculate_rewards", "rewards")
    timed(trainer, "_generate_and_score_completions", "generate_and_score (all)")
    timed(trainer, "_get_per_token_logps_and_entropies", "logps forward (loss)")
    timed(trainer.accelerator, "backward", "backward")
    timed(trainer, "training_step", "training_step (all)")
    return record


def plain_generate(model: Any, pad: int, prompt_ids: list[list[int]], new_tokens: int) -> float:
    """Seconds of `model.generate` (KV cache) on the same left-padded prompts, exactly `new_tokens` sampled each."""
    width = max(len(p) for p in prompt_ids)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids])
    with torch.no_grad():
        t = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=True, use_cache=True, pad_token_id=pad)
        return time.perf_counter() - t


def baseline(model: Any, pad: int, prompt_ids: list[list[int]], new_tokens: int) -> dict:
    """Prefill (1 new token) and decode cost of a plain generate, with the LoRA adapters on (unmerged, as in the
    rollouts) and off: ms per decode step of the whole batch, and per generated token."""
    was_training = model.training
    model.eval()
    out = {"rollouts": len(prompt_ids), "prompt_tokens": max(len(p) for p in prompt_ids), "new_tokens": new_tokens}
    variants = [("lora_unmerged", None)]
    if hasattr(model, "disable_adapter"):
        variants.append(("adapters_off", model.disable_adapter))
    for name, ctx in variants:
        with ctx() if ctx else contextlib.nullcontext():
            prefill = plain_generate(model, pad, prompt_ids, 1)
            total = plain_generate(model, pad, prompt_ids, new_tokens)
        step = (total - prefill) / (new_tokens - 1)
        out[name] = {"prefill_seconds": round(prefill, 2), "seconds": round(total, 2),
                     "ms_per_decode_step": round(1000 * step, 1),
                     "ms_per_generated_token": round(1000 * step / len(prompt_ids), 2)}
    model.train(was_training)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2", help="smollm2, tiny, or a model folder (e.g. an SFT checkpoint)")
    p.add_argument("--work-dir", default="/tmp/ascl-rl-step-profile")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--algorithm", default="ifpo")
    p.add_argument("--baseline-tokens", type=int, default=64, help="tokens per rollout of the plain generate (0: none)")
    p.add_argument("--stock", action="store_true",
                   help="TRL's defaults, the set-up before issue 12's fixes: gradient checkpointing on, and the LM "
                   "head scoring every position (prompt included) on CPU")
    p.add_argument("--out", default=None)
    for flag, default in (("--batch", 8), ("--grad-accum", 2), ("--generations", 4),
                          ("--max-completion-length", 320), ("--lora-layers", 4), ("--lora-r", 16)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--kinds", nargs="+", default=["harmful", "benign"])
    p.add_argument("--steps", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir)
    model = {"smollm2": str(embedded_model_path()), "tiny": None}.get(args.model, args.model)
    if model is None:
        model = str(make_tiny_model(work / "tiny"))
    ruleset = str(exp.mini_ruleset(work))
    data = write_toy_dataset(work / "data", load_ruleset(ruleset))
    args.ruleset, args.work_dir = ruleset, str(work)
    rows = load_split(str(data), "rl").filter(lambda r: r["kind"] in args.kinds)
    config = exp.rl_config(args, Path(model), data, args.algorithm, seed=0,
                           **({"gradient_checkpointing": True, "cpu_lm_head_completion_only": False}
                              if args.stock else {}))

    load = os.getloadavg()
    t = time.perf_counter()
    torch.manual_seed(0)
    trainer = build_ifpo_trainer(config, train_dataset=rows)
    setup = time.perf_counter() - t
    record = instrument(trainer)
    t, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    step, cpu = time.perf_counter() - t, time.process_time() - cpu
    secs = record["seconds"]
    hist = [h for h in trainer.state.log_history if "step_time" in h]
    result = {
        "model": model, "threads": torch.get_num_threads(), "setup_seconds": round(setup, 1),
        "train_seconds": round(step, 1), "train_cpu_seconds": round(cpu, 1), "steps": args.steps,
        "phases_seconds": {k: round(v, 2) for k, v in secs.items()},
        "phases_cpu_seconds": {k: round(v, 2) for k, v in record["cpu_seconds"].items()},
        "rest_of_step_seconds": round(step - secs["training_step (all)"], 2),
        "generate_calls": record["generate"],
        "stock_trl_setup": args.stock, "load_average_before": load,
        "log": [{k: h.get(k) for k in ("step_time", "completions/mean_length", "completions/clipped_ratio",
                                       "ifpo/consult_rate", "num_tokens")} for h in hist],
    }
    if args.baseline_tokens > 1:
        net = trainer.accelerator.unwrap_model(trainer.model)
        result["plain_generate"] = baseline(net, trainer.processing_class.pad_token_id, record["first_prompt_ids"],
                                            args.baseline_tokens)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    if args.out:
        write_results(Path(args.out), result)


if __name__ == "__main__":
    main()
