"""Inverse Frequency Policy Optimization (IFPO): the advantage math, pure and vectorised.

For one prompt, G rollouts with rewards r_i; each rollout has a mode m_i: ``consult`` if it called the rule tool at
least once, else ``direct``. The paper (arXiv 2602.13562) does not publish its formula; these are reconstructions
from its abstract ("rebalances advantage estimates" against the drift toward consulting on every prompt), compared
in `benchmarks/ifpo_dynamics.py`.

1. Group advantage, as GRPO: A_i = (r_i - mean(r)) / (std(r) + eps). The std is the sample std (Bessel's
   correction), as TRL's GRPOTrainer computes it, so the trainer and this function agree.
2. Mode frequency f_m. ``frequency: group`` counts it within the group, f_m = n_m / G. ``frequency: ema`` uses
   an exponential moving average of the consult fraction over batches (the current batch included; `ema_decay`
   0 is the current batch alone), so that a group in which every rollout consults still sees that consulting is
   the common mode.
3. Inverse-frequency weight: w_m = clip(1 / (K f_m), w_min, w_max), K = number of modes with f_m > 0. With both
   modes present in a group the unclipped group weights average to 1; a mode that is alone gets w = 1.
4. The rebalanced advantage A'_i, by `variant` (the formulas and why each should or should not counter the drift
   are in `rebalance_advantages`).

Why the drift happens: consulting pays off a lot on harmful prompts and a little or nothing elsewhere. A policy
learns the general habit "consult" faster than the per-topic exception, so the harmful prompts' strong signal
pulls every kind toward consulting, and once a kind consults in (nearly) every rollout its groups carry no signal
to come back: GRPO's advantages sum to zero in each group, so a group of one mode does not move the mode choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import torch

FrequencyMode = Literal["group", "ema"]
Variant = Literal["symmetric", "positive", "zero_sum", "mode_baseline"]


@dataclass(frozen=True)
class IFPOOptions:
    """The knobs of the rebalancing (see the module docstring and `rebalance_advantages`). Each field's `help`
    metadata documents it for a config; the defaults are the choice of `benchmarks/ifpo_dynamics.py`."""

    variant: Variant = field(default="positive", metadata={"help": (
        "how advantages are rebalanced by mode frequency: positive (reweight successes only; counters the drift "
        "toward always consulting), symmetric (reweight all; sharpens the winning mode), zero_sum, mode_baseline")})
    frequency: FrequencyMode = field(default="ema", metadata={"help": (
        "where mode frequencies come from: ema (moving average of the consult fraction over batches) or group")})
    w_min: float = field(default=0.25, metadata={"help": "lower clip of the inverse-frequency weight (> 0)"})
    w_max: float = field(default=4.0, metadata={"help": "upper clip of the inverse-frequency weight (>= w_min)"})
    eps: float = field(default=1e-4, metadata={"config": False, "help": (
        "added to the group reward std (> 0); 1e-4 as in TRL. Not a training option: IFPOTrainer reweights TRL's "
        "own advantages, whose eps is TRL's")})
    ema_decay: float = field(default=0.9, metadata={"help": (
        "decay of the consult-frequency EMA, in [0, 1); 0 = the current batch alone")})

    def __post_init__(self) -> None:
        if self.variant not in get_args(Variant):
            raise ValueError(f"ifpo variant {self.variant!r} unknown; choose from {', '.join(get_args(Variant))}")
        if self.frequency not in get_args(FrequencyMode):
            raise ValueError(
                f"ifpo frequency {self.frequency!r} unknown; choose from {', '.join(get_args(FrequencyMode))}"
            )
        if not self.w_min > 0:
            raise ValueError(f"w_min must be > 0, got w_min={self.w_min}")
        if self.w_min > self.w_max:
            raise ValueError(f"w_min > w_max: w_min={self.w_min}, w_max={self.w_max}")
        if self.eps <= 0:
            raise ValueError(f"eps must be > 0 (it keeps equal-reward groups at advantage 0), got eps={self.eps}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay outside [0, 1): ema_decay={self.ema_decay}")


def _grouped(x: torch.Tensor, group_size: int) -> torch.Tensor:
    if x.dim() != 1:
        raise ValueError(f"expected a 1-D tensor, got shape {tuple(x.shape)}")
    if group_size < 1 or x.numel() % group_size:
        raise ValueError(f"{x.numel()} rollouts do not split into groups of {group_size}")
    return x.view(-1, group_size)


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """GRPO's advantage: rewards standardised within each group of `group_size` consecutive rollouts."""
    r = _grouped(rewards.float(), group_size)
    std = r.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(r[:, :1])
    return ((r - r.mean(dim=1, keepdim=True)) / (std + eps)).view(-1)


def group_mode_weights(consulted: torch.Tensor, group_size: int) -> torch.Tensor:
    """Unclipped w_{m_i} = G / (K * n_{m_i}) with frequencies counted within each group."""
    c = _grouped(consulted.bool(), group_size)
    n_consult = c.sum(dim=1, keepdim=True).float()
    n_direct = group_size - n_consult
    k = (n_consult > 0).float() + (n_direct > 0).float()
    n_mode = torch.where(c, n_consult, n_direct)  # >= 1: a rollout's own mode is present
    return (group_size / (k * n_mode)).view(-1)


def frequency_mode_weights(
    consulted: torch.Tensor, group_size: int, consult_frequency: float | torch.Tensor
) -> torch.Tensor:
    """Unclipped w_{m_i} = 1 / (K * f_{m_i}) from a consult frequency (e.g. an EMA over batches): one float for the
    whole batch, or a tensor with one value per group (several independent runs in one call)."""
    c = _grouped(consulted.bool(), group_size)
    f_c = torch.as_tensor(consult_frequency, dtype=torch.float32, device=c.device).reshape(-1, 1)
    if f_c.shape[0] not in (1, c.shape[0]):
        raise ValueError(f"consult_frequency has {f_c.shape[0]} values for {c.shape[0]} groups")
    if ((f_c < 0) | (f_c > 1)).any():
        raise ValueError(f"consult_frequency must be in [0, 1], got {consult_frequency}")
    f = torch.where(c, f_c, 1 - f_c)  # frequency of each rollout's own mode
    k = (f_c > 0).float() + (f_c < 1).float()
    return (1.0 / (k * f.clamp_min(torch.finfo(torch.float32).tiny))).view(-1)


class ConsultFrequencyEMA:
    """The exponential moving average of the consult fraction over batches; starts at the first batch's fraction.

    `update` takes one batch's flags (N,) and returns a float, or flags of several independent runs (runs, N) and
    returns one value per run (a tensor), as the simulation in `benchmarks/ifpo_dynamics.py` uses it."""

    def __init__(self, decay: float = 0.9):
        if not 0 <= decay < 1:
            raise ValueError(f"ema_decay outside [0, 1): ema_decay={decay}")
        self.decay = decay
        self.value: float | torch.Tensor | None = None

    def update(self, consulted: torch.Tensor) -> float | torch.Tensor:
        frac = consulted.float().mean(dim=-1)
        frac = frac.item() if frac.dim() == 0 else frac
        self.value = frac if self.value is None else self.decay * self.value + (1 - self.decay) * frac
        return self.value


def ifpo_weights(
    consulted: torch.Tensor,
    group_size: int,
    options: IFPOOptions = IFPOOptions(),
    consult_frequency: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """clip(w_{m_i}, w_min, w_max) for every rollout. In ``ema`` mode `consult_frequency` is the EMA's value
    (`ConsultFrequencyEMA.update` of this batch); without it, this batch's consult fraction (an EMA just started)."""
    if options.frequency == "group":
        w = group_mode_weights(consulted, group_size)
    else:
        if consult_frequency is None:
            consult_frequency = consulted.float().mean().item()
        w = frequency_mode_weights(consulted, group_size, consult_frequency)
    return w.clamp(options.w_min, options.w_max)


def rebalance_advantages(
    advantages: torch.Tensor,
    consulted: torch.Tensor,
    group_size: int,
    options: IFPOOptions = IFPOOptions(),
    consult_frequency: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """IFPO's A'_i from GRPO's advantages A_i (the whole batch, group after group, as TRL lays rollouts out).

    With w_i = clip(w_{m_i}, w_min, w_max) and means taken within the group:

    - ``symmetric``: A'_i = w_i A_i. Every advantage of the rare mode is scaled up, both signs. The expected push on
      the mode choice becomes ~ (R_consult - R_direct) (p^2 + (1-p)^2) / 2 instead of GRPO's ~ (...) p (1-p): it
      does not vanish as p -> 0 or 1, so it sharpens whichever mode already wins: it speeds the drift up.
    - ``positive``: A'_i = w_i A_i if A_i > 0 else A_i. Only successes are reweighted: a success of the rare mode
      counts up to w_max times, one of the common mode less, failures as in GRPO. The group's advantages no longer
      sum to zero, and the excess favours the rare mode, so where the modes earn about the same reward the policy is
      pulled back toward using both, while a large reward gap (harmful prompts) still wins. With ``ema``
      frequencies this pull acts even in groups where every rollout consults.
    - ``zero_sum``: A'_i = w_i A_i - mean(w A). The symmetric weights, re-centred so that the group's advantages sum
      to zero as GRPO's do: it keeps the shift of emphasis toward the rare mode but adds no net push.
    - ``mode_baseline``: A'_i = A_i - mean_{j: m_j = m_i}(A_j). Each mode gets its own baseline, so rollouts are
      compared only with rollouts of the same mode; the reward gap between modes no longer drives the mode choice
      at all (nothing drifts, but nothing learns to consult where it pays either).
    """
    if advantages.shape != consulted.shape:
        raise ValueError(f"advantages {tuple(advantages.shape)} and consulted {tuple(consulted.shape)} differ in shape")
    a = _grouped(advantages, group_size)
    c = _grouped(consulted.bool(), group_size)
    if options.variant == "mode_baseline":
        cf = c.to(a.dtype)
        mean_c = (a * cf).sum(1, keepdim=True) / cf.sum(1, keepdim=True).clamp_min(1)
        mean_d = (a * (1 - cf)).sum(1, keepdim=True) / (1 - cf).sum(1, keepdim=True).clamp_min(1)
        return (a - torch.where(c, mean_c, mean_d)).view(-1)
    w = ifpo_weights(consulted, group_size, options, consult_frequency).to(a.dtype).view_as(a)
    if options.variant == "symmetric":
        out = w * a
    elif options.variant == "positive":
        out = torch.where(a > 0, w * a, a)
    else:  # zero_sum
        out = w * a - (w * a).mean(dim=1, keepdim=True)
    return out.reshape(-1)


def ifpo_advantages(
    rewards: torch.Tensor,
    consulted: torch.Tensor,
    group_size: int,
    options: IFPOOptions = IFPOOptions(),
    consult_frequency: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """IFPO advantages from rewards: `rebalance_advantages` of the GRPO group advantages."""
    if rewards.shape != consulted.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and consulted {tuple(consulted.shape)} differ in shape")
    return rebalance_advantages(
        group_advantages(rewards, group_size, options.eps), consulted, group_size, options, consult_frequency
    )
