"""Inverse Frequency Policy Optimization (IFPO): the advantage math, pure and vectorised.

For one prompt, G rollouts with rewards r_i; each rollout has a mode m_i: ``consult`` if it called the rule tool at
least once, else ``direct``.

1. Group advantage, as GRPO: A_i = (r_i - mean(r)) / (std(r) + eps). The std is the sample std (Bessel's
   correction), as TRL's GRPOTrainer computes it, so the trainer and this function agree.
2. Mode frequency: n_m = number of rollouts in mode m; K = number of modes present in the group.
3. Inverse-frequency weight: w_m = G / (K * n_m). With both modes present the weights average to 1 over the group
   and each mode carries the same total weight; a group with one mode is unchanged (w = 1).
4. IFPO advantage: A'_i = clip(w_{m_i}, w_min, w_max) * A_i.

Frequency modes: ``group`` (default) counts n_m per group as above. ``ema`` replaces the per-group frequency
n_m / G with an exponential moving average f_m of the consult fraction over batches (the current batch included):
w_m = 1 / (K * f_m), K = number of modes with f_m > 0. Then the weight is the same for every rollout of a mode in
the batch, so a whole group in the common mode is scaled down and one in the rare mode scaled up.

The paper (arXiv 2602.13562) does not publish the exact formula; this is the reconstruction from its abstract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

FrequencyMode = Literal["group", "ema"]


@dataclass(frozen=True)
class IFPOOptions:
    """The knobs of the reweighting (see the module docstring)."""

    w_min: float = 0.25
    w_max: float = 4.0
    eps: float = 1e-4
    frequency: FrequencyMode = "group"
    ema_decay: float = 0.9

    def __post_init__(self) -> None:
        if not 0 < self.w_min <= self.w_max:
            raise ValueError(f"need 0 < w_min <= w_max, got w_min={self.w_min}, w_max={self.w_max}")
        if self.eps <= 0:
            raise ValueError(f"eps must be > 0 (it keeps equal-reward groups at advantage 0), got {self.eps}")
        if self.frequency not in ("group", "ema"):
            raise ValueError(f"frequency must be 'group' or 'ema', got {self.frequency!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


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


def frequency_mode_weights(consulted: torch.Tensor, consult_frequency: float) -> torch.Tensor:
    """Unclipped w_{m_i} = 1 / (K * f_{m_i}) from a consult frequency f_consult (e.g. an EMA over batches)."""
    if not 0.0 <= consult_frequency <= 1.0:
        raise ValueError(f"consult_frequency must be in [0, 1], got {consult_frequency}")
    f = torch.tensor([1.0 - consult_frequency, consult_frequency], dtype=torch.float32, device=consulted.device)
    k = (f > 0).sum().float()
    w = 1.0 / (k * f.clamp_min(torch.finfo(torch.float32).tiny))
    return w[consulted.long()]


class ConsultFrequencyEMA:
    """The exponential moving average of the consult fraction over batches; starts at the first batch's fraction."""

    def __init__(self, decay: float = 0.9):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.value: float | None = None

    def update(self, consulted: torch.Tensor) -> float:
        frac = consulted.float().mean().item()
        self.value = frac if self.value is None else self.decay * self.value + (1 - self.decay) * frac
        return self.value


def ifpo_weights(
    consulted: torch.Tensor,
    group_size: int,
    options: IFPOOptions = IFPOOptions(),
    consult_frequency: float | None = None,
) -> torch.Tensor:
    """clip(w_{m_i}, w_min, w_max) for every rollout; `consult_frequency` is required in ``ema`` mode."""
    if options.frequency == "group":
        w = group_mode_weights(consulted, group_size)
    else:
        if consult_frequency is None:
            raise ValueError("frequency='ema' needs consult_frequency (from ConsultFrequencyEMA.update)")
        _grouped(consulted, group_size)  # same shape check as group mode
        w = frequency_mode_weights(consulted, consult_frequency)
    return w.clamp(options.w_min, options.w_max)


def ifpo_advantages(
    rewards: torch.Tensor,
    consulted: torch.Tensor,
    group_size: int,
    options: IFPOOptions = IFPOOptions(),
    consult_frequency: float | None = None,
) -> torch.Tensor:
    """A'_i = clip(w_{m_i}, w_min, w_max) * A_i, for rollouts laid out group after group (as TRL lays them out)."""
    if rewards.shape != consulted.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and consulted {tuple(consulted.shape)} differ in shape")
    adv = group_advantages(rewards, group_size, options.eps)
    return ifpo_weights(consulted, group_size, options, consult_frequency).to(adv.dtype) * adv
