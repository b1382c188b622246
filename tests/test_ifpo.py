"""IFPO advantage math on hand-computed cases (see the IFPO section of the README and rl/ifpo.py)."""

from __future__ import annotations

import math

import pytest
import torch

from ascl_data.rl.ifpo import (
    ConsultFrequencyEMA,
    IFPOOptions,
    frequency_mode_weights,
    group_advantages,
    group_mode_weights,
    ifpo_advantages,
    ifpo_weights,
    rebalance_advantages,
)

T = torch.tensor
S3 = math.sqrt(1 / 3)  # sample std of [1, 0, 1, 0]
EPS = 1e-12  # tiny, so the hand computations below need no eps term


A = 0.5 / S3  # GRPO advantage magnitude of rewards [1, 0, 1, 0]


def opts(**kw) -> IFPOOptions:
    """Today's symmetric rule with group frequencies and no clipping, unless `kw` says otherwise."""
    base = {"eps": EPS, "w_min": 0.01, "w_max": 100.0, "variant": "symmetric", "frequency": "group"}
    return IFPOOptions(**{**base, **kw})


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


def test_ema_mode_without_a_frequency_uses_the_batch():
    # 1 of 4 consults: f = 0.25 -> w_consult = 1/(2*0.25) = 2, w_direct = 1/(2*0.75) = 2/3
    w = ifpo_weights(T([True, False, False, False]), 2, opts(frequency="ema"))
    torch.testing.assert_close(w, T([2.0, 2 / 3, 2 / 3, 2 / 3]))


def test_positive_variant_hand_computed():
    # G=4, 3 consult + 1 direct: w = [2/3, 2/3, 2/3, 2]; only the positive advantages are reweighted
    out = ifpo_advantages(T([1.0, 0.0, 1.0, 0.0]), T([True, True, True, False]), 4, opts(variant="positive"))
    torch.testing.assert_close(out, T([2 / 3 * A, -A, 2 / 3 * A, -A]))


def test_positive_variant_rare_mode_success_counts_more():
    # G=4, 1 consult (fails) + 3 direct, one of them succeeds: w = [2, 2/3, 2/3, 2/3]
    rewards, consulted = T([0.0, 1.0, 0.0, 0.0]), T([True, False, False, False])
    adv = group_advantages(rewards, 4, EPS)  # [-0.5, 1.5, -0.5, -0.5] / std
    out = ifpo_advantages(rewards, consulted, 4, opts(variant="positive"))
    torch.testing.assert_close(out, T([adv[0], 2 / 3 * adv[1], adv[2], adv[3]]))
    # the direct success (common mode here) is scaled down: the net push now favours the rare mode, consult
    dlogpi = consulted.float() - 0.25  # d log pi / d consult-logit at p = 0.25
    assert out.sum().item() < 0 and (out * dlogpi).sum().item() > (adv * dlogpi).sum().item()


def test_positive_ema_pulls_back_a_group_that_always_consults():
    # every rollout consults; the EMA says consulting is 75% of rollouts: w_consult = 1/(2*0.75) = 2/3 on successes
    rewards, consulted = T([1.0, 0.0, 1.0, 0.0]), T([True] * 4)
    out = ifpo_advantages(rewards, consulted, 4, opts(variant="positive", frequency="ema"), 0.75)
    torch.testing.assert_close(out, T([2 / 3 * A, -A, 2 / 3 * A, -A]))
    assert out.sum().item() == pytest.approx(-2 / 3 * A)  # < 0: the policy is pushed away from consulting
    # GRPO and the symmetric rule leave such a group without any push on the mode choice
    assert group_advantages(rewards, 4, EPS).sum().item() == pytest.approx(0.0, abs=1e-6)
    sym = ifpo_advantages(rewards, consulted, 4, opts(frequency="ema"), 0.75)
    assert sym.sum().item() == pytest.approx(0.0, abs=1e-6)


def test_zero_sum_variant_hand_computed():
    # w*A = [2/3 A, -2/3 A, 2/3 A, -2 A], mean -A/3 -> [A, -A/3, A, -5A/3], summing to 0
    out = ifpo_advantages(T([1.0, 0.0, 1.0, 0.0]), T([True, True, True, False]), 4, opts(variant="zero_sum"))
    torch.testing.assert_close(out, T([A, -A / 3, A, -5 * A / 3]))
    assert out.sum().item() == pytest.approx(0.0, abs=1e-6)


def test_mode_baseline_variant_hand_computed():
    # consult advantages [A, -A, A] (mean A/3), direct [-A] (mean -A) -> [2A/3, -4A/3, 2A/3, 0]
    out = ifpo_advantages(T([1.0, 0.0, 1.0, 0.0]), T([True, True, True, False]), 4, opts(variant="mode_baseline"))
    torch.testing.assert_close(out, T([2 * A / 3, -4 * A / 3, 2 * A / 3, 0.0]))


@pytest.mark.parametrize("variant", ["symmetric", "positive", "zero_sum", "mode_baseline"])
def test_rebalance_is_scale_free(variant: str):
    # the trainer rebalances TRL's advantages whatever their scaling (scale_rewards): scaling commutes
    adv, consulted = T([0.3, -1.2, 0.9, 0.0, 2.0, -2.0]), T([True, False, False, True, True, True])
    o = opts(variant=variant)
    scaled = rebalance_advantages(3 * adv, consulted, 3, o)
    torch.testing.assert_close(scaled, 3 * rebalance_advantages(adv, consulted, 3, o))


def test_per_group_frequencies_for_independent_runs():
    # two runs of one group each: f = 0.75 and 0.25 -> (2/3, 2) and (2, 2/3)
    w = frequency_mode_weights(T([True, False, True, False]), 2, T([0.75, 0.25]))
    torch.testing.assert_close(w, T([2 / 3, 2.0, 2.0, 2 / 3]))
    with pytest.raises(ValueError, match="3 values for 2 groups"):
        frequency_mode_weights(T([True, False, True, False]), 2, T([0.5, 0.5, 0.5]))


def test_ema_over_independent_runs():
    ema = ConsultFrequencyEMA(decay=0.5)
    torch.testing.assert_close(ema.update(T([[True, True], [False, True]])), T([1.0, 0.5]))
    torch.testing.assert_close(ema.update(T([[False, False], [True, True]])), T([0.5, 0.75]))


def test_default_is_positive_with_ema():
    # chosen by benchmarks/ifpo_dynamics.py (docs/concepts/ifpo.md, "Why `positive` with `ema`")
    assert (IFPOOptions().variant, IFPOOptions().frequency) == ("positive", "ema")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"w_min": 0.0}, "w_min must be > 0"),
        ({"w_min": 3.0, "w_max": 2.0}, "w_min > w_max"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"frequency": "batch"}, "ifpo frequency 'batch' unknown; choose from group, ema"),
        ({"variant": "x"}, "ifpo variant 'x' unknown; choose from symmetric, positive, zero_sum, mode_baseline"),
        ({"ema_decay": 1.0}, r"ema_decay outside \[0, 1\)"),
        ({"ema_decay": -0.1}, r"ema_decay outside \[0, 1\)"),
    ],
)
def test_bad_options_fail_naming_the_field(kw, message):
    with pytest.raises(ValueError, match=message):
        IFPOOptions(**kw)


def test_rollouts_must_split_into_groups():
    with pytest.raises(ValueError, match="groups of 4"):
        ifpo_advantages(T([1.0, 0.0, 1.0]), T([True, False, True]), 4)
