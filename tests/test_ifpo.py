"""IFPO advantage math on hand-computed cases (DESIGN.md, "IFPO")."""

from __future__ import annotations

import math

import pytest
import torch

from ascl_data.rl.ifpo import (
    ConsultFrequencyEMA,
    IFPOOptions,
    group_advantages,
    group_mode_weights,
    ifpo_advantages,
    ifpo_weights,
)

T = torch.tensor
S3 = math.sqrt(1 / 3)  # sample std of [1, 0, 1, 0]
EPS = 1e-12  # tiny, so the hand computations below need no eps term


def opts(**kw) -> IFPOOptions:
    return IFPOOptions(**{"eps": EPS, "w_min": 0.01, "w_max": 100.0, **kw})


def test_group_advantage_is_grpo_sample_std():
    adv = group_advantages(T([1.0, 0.0, 1.0, 0.0]), 4, eps=EPS)
    a = 0.5 / S3
    torch.testing.assert_close(adv, T([a, -a, a, -a]))


def test_both_modes_present_hand_computed():
    # G=4, 3 consult + 1 direct: K=2, w_consult = 4/(2*3) = 2/3, w_direct = 4/(2*1) = 2
    rewards, consulted = T([1.0, 0.0, 1.0, 0.0]), T([True, True, True, False])
    a = 0.5 / S3
    out = ifpo_advantages(rewards, consulted, 4, opts())
    torch.testing.assert_close(out, T([2 / 3 * a, -2 / 3 * a, 2 / 3 * a, -2 * a]))
    w = group_mode_weights(consulted, 4)
    torch.testing.assert_close(w, T([2 / 3, 2 / 3, 2 / 3, 2.0]))
    assert w.mean().item() == pytest.approx(1.0)  # weights average to 1 over the group
    assert w[consulted].sum().item() == pytest.approx(w[~consulted].sum().item())  # each mode same total weight


@pytest.mark.parametrize("mode", [True, False])
def test_one_mode_only_is_plain_grpo(mode: bool):
    rewards = T([0.2, 0.9, 0.4, 0.7])
    out = ifpo_advantages(rewards, T([mode] * 4), 4, opts())
    torch.testing.assert_close(out, group_advantages(rewards, 4, EPS))


def test_equal_rewards_give_zero_advantage_not_nan():
    out = ifpo_advantages(T([0.5] * 4), T([True, False, False, False]), 4, IFPOOptions())
    assert torch.equal(out, torch.zeros(4))


def test_zero_std_single_rollout_groups():
    out = ifpo_advantages(T([1.0, 0.0]), T([True, False]), 1, IFPOOptions())
    assert torch.equal(out, torch.zeros(2))


def test_eps_enters_the_denominator():
    out = group_advantages(T([1.0, 0.0]), 2, eps=1.0)
    s = math.sqrt(0.5)
    torch.testing.assert_close(out, T([0.5 / (s + 1), -0.5 / (s + 1)]))


def test_clipping():
    # G=8, 1 consult + 7 direct: w_consult = 8/(2*1) = 4, w_direct = 8/(2*7) = 4/7
    consulted = T([True] + [False] * 7)
    torch.testing.assert_close(ifpo_weights(consulted, 8, opts()), T([4.0] + [4 / 7] * 7))
    clipped = ifpo_weights(consulted, 8, opts(w_min=0.6, w_max=2.0))
    torch.testing.assert_close(clipped, T([2.0] + [0.6] * 7))
    rewards = T([1.0] + [0.0] * 7)
    adv = group_advantages(rewards, 8, EPS)
    torch.testing.assert_close(ifpo_advantages(rewards, consulted, 8, opts(w_min=0.6, w_max=2.0)), clipped * adv)


def test_groups_are_independent_and_vectorised():
    consulted = T([True, False, False, False, True, True, True, False])
    w = group_mode_weights(consulted, 4)
    # group A (1 consult, 3 direct): 4/(2*1)=2, 4/(2*3)=2/3; group B (3 consult, 1 direct): 2/3, 2
    torch.testing.assert_close(w, T([2.0, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2.0]))


def test_batch_ema_frequencies():
    ema = ConsultFrequencyEMA(decay=0.5)
    b1 = T([True, True, True, False])  # fraction 0.75 -> EMA starts at 0.75
    f1 = ema.update(b1)
    assert f1 == pytest.approx(0.75)
    w1 = ifpo_weights(b1, 2, opts(frequency="ema"), f1)
    # w_consult = 1/(2*0.75) = 2/3, w_direct = 1/(2*0.25) = 2, for every rollout of the mode, whatever its group
    torch.testing.assert_close(w1, T([2 / 3, 2 / 3, 2 / 3, 2.0]))
    b2 = T([True, False, False, False])  # fraction 0.25 -> EMA 0.5*0.75 + 0.5*0.25 = 0.5
    f2 = ema.update(b2)
    assert f2 == pytest.approx(0.5)
    torch.testing.assert_close(ifpo_weights(b2, 2, opts(frequency="ema"), f2), torch.ones(4))
    b3 = T([True] * 4)  # EMA 0.5*0.5 + 0.5*1 = 0.75
    assert ema.update(b3) == pytest.approx(0.75)


def test_ema_with_one_mode_seen_is_unweighted():
    ema = ConsultFrequencyEMA(decay=0.9)
    f = ema.update(T([False] * 4))
    assert torch.equal(ifpo_weights(T([False] * 4), 2, opts(frequency="ema"), f), torch.ones(4))


def test_ema_mode_needs_a_frequency():
    with pytest.raises(ValueError, match="consult_frequency"):
        ifpo_weights(T([True, False]), 2, opts(frequency="ema"))


@pytest.mark.parametrize(
    "kw",
    [{"w_min": 0.0}, {"w_min": 3.0, "w_max": 2.0}, {"eps": 0.0}, {"frequency": "batch"}, {"ema_decay": 1.0}],
)
def test_bad_options_fail(kw):
    with pytest.raises(ValueError):
        IFPOOptions(**kw)


def test_rollouts_must_split_into_groups():
    with pytest.raises(ValueError, match="groups of 4"):
        ifpo_advantages(T([1.0, 0.0, 1.0]), T([True, False, True]), 4)
