"""Mode-choice dynamics: does an advantage rule counter the drift toward consulting on every prompt?

A small model of what a policy learns about *whether to consult* (issue 12). Per prompt kind k the policy consults
with probability sigmoid(g + b_k): g is a consult habit shared by all kinds, b_k a per-kind term that learns 10x
slower (a small LM picks up a general habit faster than a per-topic one). Each step, for each kind, one group of G
rollouts: mode drawn from the policy, reward 1 with probability P(mode, kind) else 0 (minus a length cost for
consulting in one scenario), advantages from the rule under test (the package's own `ascl_data.rl.ifpo`
functions), and a REINFORCE step on the logits (d log pi / d logit = 1 - p for consult, -p for direct): b_k moves
by lr * slow * (mean over its group of A_i * d log pi_i / d logit), g by lr * (the mean of that over the kinds),
lr 0.5, slow 0.1, g = b_k = 0 at the start. 300 steps; consult rate = the policy's probability, mean over the last
50 steps; 16 seeds, vectorised with torch over scenarios x seeds.

    python benchmarks/ifpo_dynamics.py          # writes benchmarks/results/ifpo_dynamics.{json,png}

The default `IFPOOptions` is judged against the issue's bar: in every scenario where GRPO drifts (benign and
reasoning consult rates above 0.8), hold those two rates at least 0.2 below GRPO's while keeping harmful >= 0.85;
where consulting is clearly better on every kind, still learn to consult (every kind >= 0.85).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ascl_data.rl.ifpo import ConsultFrequencyEMA, IFPOOptions, group_advantages, ifpo_advantages
from provenance import write_results

RESULTS = Path(__file__).parent / "results"
KINDS = ("harmful", "benign", "reasoning")

# name -> ((P(direct), P(consult)) for harmful, benign, reasoning; reward cost of consulting)
SCENARIOS: dict[str, tuple[tuple[tuple[float, float], ...], float]] = {
    "consult weakly better": (((0.55, 0.95), (0.88, 0.90), (0.70, 0.70)), 0.0),
    "consult costs a little off-harmful": (((0.55, 0.95), (0.90, 0.86), (0.72, 0.68)), 0.0),
    "consult needed only on harmful": (((0.20, 0.95), (0.92, 0.92), (0.75, 0.75)), 0.0),
    "length cost for consulting (0.05)": (((0.55, 0.95), (0.88, 0.90), (0.70, 0.70)), 0.05),
    "consult clearly better everywhere": (((0.55, 0.95), (0.60, 0.90), (0.45, 0.80)), 0.0),
}
LEARNS_CONSULT = "consult clearly better everywhere"

ALGORITHMS: dict[str, IFPOOptions | None] = {
    "grpo": None,
    "symmetric/group": IFPOOptions(variant="symmetric", frequency="group"),
    "symmetric/ema": IFPOOptions(variant="symmetric", frequency="ema"),
    "positive/group": IFPOOptions(variant="positive", frequency="group"),
    "positive/ema": IFPOOptions(variant="positive", frequency="ema"),
    "zero_sum/group": IFPOOptions(variant="zero_sum", frequency="group"),
    "zero_sum/ema": IFPOOptions(variant="zero_sum", frequency="ema"),
    "mode_baseline": IFPOOptions(variant="mode_baseline", frequency="group"),
}


def simulate(
    options: IFPOOptions | None, group_size: int, seeds: int, steps: int, lr: float, slow: float, seed0: int
) -> torch.Tensor:
    """Consult probability per (scenario, seed, step, kind) under one advantage rule."""
    n_sc, n_k = len(SCENARIOS), len(KINDS)
    probs = torch.tensor([s[0] for s in SCENARIOS.values()])  # (scenario, kind, [direct, consult])
    cost = torch.tensor([s[1] for s in SCENARIOS.values()])
    runs = n_sc * seeds
    p_success = probs.repeat_interleave(seeds, dim=0)  # (runs, kind, 2)
    cost = cost.repeat_interleave(seeds).view(runs, 1, 1)
    gen = torch.Generator().manual_seed(seed0)
    g = torch.zeros(runs, 1)
    b = torch.zeros(runs, n_k)
    ema = ConsultFrequencyEMA(options.ema_decay) if options is not None and options.frequency == "ema" else None
    trace = torch.empty(runs, steps, n_k)
    for t in range(steps):
        p = torch.sigmoid(g + b)  # (runs, kind)
        trace[:, t] = p
        c = torch.rand(runs, n_k, group_size, generator=gen) < p.unsqueeze(-1)
        ps = torch.where(c, p_success[..., 1:], p_success[..., :1])
        r = (torch.rand(runs, n_k, group_size, generator=gen) < ps).float() - cost * c
        flat_r, flat_c = r.view(-1), c.view(-1)
        if options is None:
            adv = group_advantages(flat_r, group_size)
        else:
            freq = ema.update(c.view(runs, -1)).repeat_interleave(n_k) if ema is not None else None
            adv = ifpo_advantages(flat_r, flat_c, group_size, options, freq)
        adv = adv.view(runs, n_k, group_size)
        grad = (adv * (c.float() - p.unsqueeze(-1))).mean(-1)  # per kind: mean over its group
        g += lr * grad.mean(dim=1, keepdim=True)  # the shared habit sees every kind's rollouts
        b += lr * slow * grad
    return trace.view(n_sc, seeds, steps, n_k)


def summarise(trace: torch.Tensor, last: int) -> dict[str, dict[str, float]]:
    """Per scenario and kind: mean over seeds of the consult rate over the last `last` steps, and its spread."""
    final = trace[:, :, -last:].mean(dim=2)  # (scenario, seed, kind)
    return {
        sc: {
            **{k: round(final[i, :, j].mean().item(), 3) for j, k in enumerate(KINDS)},
            **{f"{k}_sd": round(final[i, :, j].std().item(), 3) for j, k in enumerate(KINDS)},
        }
        for i, sc in enumerate(SCENARIOS)
    }


def verdict(table: dict[str, dict[str, dict[str, float]]], alg: str) -> dict[str, str]:
    """The issue's bar for `alg`, per scenario, against GRPO of the same group size."""
    out = {}
    for sc, grpo in table["grpo"].items():
        row = table[alg][sc]
        if sc == LEARNS_CONSULT:
            ok = all(row[k] >= 0.85 for k in KINDS)
            out[sc] = f"{'pass' if ok else 'FAIL'}: learns to consult (every kind >= 0.85)"
        elif min(grpo["benign"], grpo["reasoning"]) > 0.8:
            ok = (
                grpo["benign"] - row["benign"] >= 0.2
                and grpo["reasoning"] - row["reasoning"] >= 0.2
                and row["harmful"] >= 0.85
            )
            out[sc] = f"{'pass' if ok else 'FAIL'}: benign/reasoning >= 0.2 below GRPO, harmful >= 0.85"
        else:
            out[sc] = "GRPO does not drift here"
    return out


def plot(traces: dict[str, torch.Tensor], group_size: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ["grpo", "symmetric/group", "positive/group", "positive/ema", "zero_sum/group", "mode_baseline"]
    colors = {"harmful": "tab:red", "benign": "tab:green", "reasoning": "tab:blue"}
    fig, axes = plt.subplots(len(SCENARIOS), len(shown), figsize=(3.1 * len(shown), 2.4 * len(SCENARIOS)),
                             sharex=True, sharey=True)
    for j, alg in enumerate(shown):
        mean = traces[alg].mean(dim=1)  # (scenario, step, kind)
        for i, sc in enumerate(SCENARIOS):
            ax = axes[i, j]
            for k, kind in enumerate(KINDS):
                ax.plot(mean[i, :, k].numpy(), color=colors[kind], label=kind, lw=1.2)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(alg, fontsize=10)
            if j == 0:
                ax.set_ylabel(sc.replace(" (", "\n("), fontsize=7)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"consult rate per kind over 300 steps, mean of the seeds, groups of {group_size}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--last", type=int, default=50, help="steps averaged for the final consult rate")
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--slow", type=float, default=0.1, help="learning-rate factor of the per-kind terms b_k")
    p.add_argument("--group-sizes", type=int, nargs="+", default=[8, 4, 16])
    p.add_argument("--out", default=str(RESULTS / "ifpo_dynamics"))
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    tables, verdicts = {}, {}
    for gs in args.group_sizes:
        traces = {
            alg: simulate(opts, gs, args.seeds, args.steps, args.lr, args.slow, seed0=1000 * gs)
            for alg, opts in ALGORITHMS.items()
        }
        tables[gs] = {alg: summarise(tr, args.last) for alg, tr in traces.items()}
        verdicts[gs] = {alg: verdict(tables[gs], alg) for alg in ALGORITHMS if alg != "grpo"}
        if gs == args.group_sizes[0]:
            plot(traces, gs, Path(args.out).with_suffix(".png"))
    default = IFPOOptions()
    result = {
        "setup": {
            **{k: v for k, v in vars(args).items() if k != "out"},
            "kinds": KINDS,
            "scenarios": {k: {"p_direct_consult": v[0], "consult_cost": v[1]} for k, v in SCENARIOS.items()},
            "algorithms": {k: (asdict(v) if v else "grpo") for k, v in ALGORITHMS.items()},
            "default": asdict(default),
            "default_is": next(k for k, v in ALGORITHMS.items() if v == default),
            "machine": f"{platform.machine()} CPU, torch {torch.__version__}, 1 thread",
            "seconds": round(time.perf_counter() - start, 1),
        },
        "consult_rate": {str(gs): t for gs, t in tables.items()},
        "verdict": {str(gs): v for gs, v in verdicts.items()},
    }
    write_results(Path(args.out).with_suffix(".json"), result)
    for gs in args.group_sizes:
        print(f"\n== groups of {gs}")
        for sc in SCENARIOS:
            print(f"  {sc}")
            for alg in ALGORITHMS:
                row = tables[gs][alg][sc]
                v = "" if alg == "grpo" else verdicts[gs][alg][sc].split(":")[0]
                print(f"    {alg:18s} " + " ".join(f"{row[k]:.2f}" for k in KINDS) + f"  {v}")
    print(f"\n{result['setup']['seconds']} s")


if __name__ == "__main__":
    main()
