"""IFPOTrainer against stock TRL: it shows the policy what a stock `GRPOTrainer` shows (the rule tool's schema, the
`rl` split's system message), and what TRL logs as the advantages is what IFPO trained on. Tiny random model on
SmolLM2's tokenizer, the toy dataset, the rule tool live."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import trl
from trl import GRPOConfig, GRPOTrainer

from ascl_data.rl.config import IFPOConfig
from ascl_data.rl.data import load_split
from ascl_data.rl.environment import consulted
from ascl_data.rl.ifpo import group_advantages, ifpo_advantages
from ascl_data.rl.toy import write_toy_dataset
from ascl_data.rl.trainer import build_ifpo_trainer
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from helpers import record_layer_grads
from test_rl_pipeline import ifpo_settings

pytestmark = pytest.mark.slow

_trl_utils = importlib.import_module("trl.trainer.utils")
# TRL 1.15's GRPO loss runs Triton kernels (trl.kernels), so it trains on GPUs only: without Triton it has none
trains_here = pytest.mark.skipif(
    hasattr(_trl_utils, "_ChunkedLogProbFunction") and _trl_utils._ChunkedLogProbFunction is None,
    reason=f"TRL {trl.__version__}'s GRPO loss needs Triton (a GPU): it cannot train here",
)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Path:
    return write_toy_dataset(tmp_path_factory.mktemp("built"), load_ruleset("compact"))


def test_stock_grpo_trainer_sees_what_ifpo_trainer_sees(tiny_model_dir, toy_data, smollm_tokenizer, tmp_path):
    ifpo = build_ifpo_trainer(IFPOConfig(**ifpo_settings(tiny_model_dir, toy_data, tmp_path / "i", smollm_tokenizer)))
    book = load_ruleset("compact")
    rl = load_split(str(toy_data), "rl")

    def no_reward(completions, **kwargs):
        return [0.0] * len(completions)

    stock = GRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=no_reward, train_dataset=rl,
        args=GRPOConfig(output_dir=str(tmp_path / "s"), per_device_train_batch_size=4, num_generations=4,
                        bf16=False, report_to="none"),
        tools=[RuleTool(book).as_function()],
    )
    prompts = [rl[i]["prompt"] for i in (0, 10, 15)]  # harmful, benign, reasoning
    assert [ifpo.train_dataset[i]["prompt"] for i in (0, 10, 15)] == prompts
    ours, theirs = ifpo._tokenize_prompts(prompts)[0], stock._tokenize_prompts(prompts)[0]
    assert [list(x) for x in ours] == [list(x) for x in theirs]
    text = smollm_tokenizer.decode(ours[0])
    assert json.dumps(RuleTool(book).schema(), ensure_ascii=False) in text  # the build's schema, as SFT saw it
    assert json.dumps({"type": "string", "enum": book.category_ids}) in text  # with the category enum
    assert prompts[0][0]["role"] == "system" and prompts[0][0]["content"] in text  # the stored system message


@trains_here
def test_logged_advantages_are_the_ones_trained_on(tiny_model_dir, toy_data, smollm_tokenizer, tmp_path):
    """One real IFPO step (issue 12): TRL's completions log and the advantage metrics carry IFPO's values."""
    rl = load_split(str(toy_data), "rl").select([0, 10])  # a harmful and a benign prompt, 4 rollouts each
    config = IFPOConfig(**ifpo_settings(tiny_model_dir, toy_data, tmp_path / "o", smollm_tokenizer,
                                        per_device_train_batch_size=8, ifpo_w_min=0.1, ifpo_w_max=10.0,
                                        log_completions=True, save_strategy="no"))
    trainer = build_ifpo_trainer(config, train_dataset=rl)
    trainer.train()
    table = pd.read_parquet(tmp_path / "o" / "completions" / "completions_00001.parquet")
    flags = torch.tensor([consulted(list(c)) for c in table["completion"]])
    assert 0 < int(flags.sum()) < len(flags), "the steered policy should mix both modes"
    rewards = torch.tensor(table[trainer.reward_func_names].fillna(0).sum(axis=1).to_numpy(), dtype=torch.float32)
    expected = ifpo_advantages(rewards, flags, 4, trainer.ifpo)
    assert not torch.allclose(expected, group_advantages(rewards, 4)), "not GRPO's advantages"
    torch.testing.assert_close(torch.tensor(table["advantage"].to_numpy(), dtype=torch.float32), expected)
    (step,) = [h for h in trainer.state.log_history if "ifpo/consult_rate" in h]
    for name, mask in (("consult", flags), ("direct", ~flags)):
        assert step[f"ifpo/advantage/{name}"] == pytest.approx(expected[mask].abs().mean().item(), rel=1e-5)


@trains_here
@pytest.mark.parametrize("checkpointing, below", [(False, {False}), (True, {True})])
def test_lora_backward_reaches_below_the_adapted_layers_only_with_checkpointing(
        checkpointing, below, tiny_model_dir, toy_data, smollm_tokenizer, tmp_path):
    """LoRA on the top layer only. With gradient checkpointing off, backward stops at the adapted layer; with TRL's
    default (on, kept: it bounds activation memory) TRL makes the input embeddings require grad, so backward runs
    through every layer (issue 12: half of a SmolLM2 step with LoRA on 4 of 30 layers; `ifpo_vs_grpo.py` turns it
    off there, while `configs/ifpo_smollm2.yaml` without it was killed at 17.7 GB)."""
    rl = load_split(str(toy_data), "rl").select([0])
    config = IFPOConfig(**ifpo_settings(tiny_model_dir, toy_data, tmp_path / "o", smollm_tokenizer,
                                        max_completion_length=16, save_strategy="no", use_peft=True, lora_r=4,
                                        lora_target_modules=["layers.1.self_attn.q_proj"],
                                        gradient_checkpointing=checkpointing))
    trainer = build_ifpo_trainer(config, train_dataset=rl)
    grads = record_layer_grads(trainer.model.get_base_model().model.layers)
    trainer.train()
    assert grads == {0: below, 1: {True}}


@trains_here
@pytest.mark.skipif(not hasattr(_trl_utils, "_use_triton"), reason="this TRL scores the labelled positions only anyway")
def test_lm_head_scores_only_the_completion_on_cpu(tiny_model_dir, toy_data, smollm_tokenizer, tmp_path, monkeypatch):
    """TRL's fused LM head scores every position, prompt included, off Triton devices; on CPU that tripled the LM
    head's work (49k vocabulary, forward and backward) for a 624-token prompt. The trainer scores only the labelled
    (completion) positions, with the same log-probabilities and entropies, when asked to
    (`cpu_lm_head_completion_only`: it patches a private TRL function, so it is opt-in); by default TRL is untouched."""
    import trl.trainer.utils as trl_utils

    trainer = build_ifpo_trainer(IFPOConfig(**ifpo_settings(tiny_model_dir, toy_data, tmp_path / "o",
                                                            smollm_tokenizer, cpu_lm_head_completion_only=True)))
    default = build_ifpo_trainer(IFPOConfig(**ifpo_settings(tiny_model_dir, toy_data, tmp_path / "d",
                                                            smollm_tokenizer)))
    assert "_get_per_token_logps_and_entropies" not in vars(default)  # TRL's own method, unwrapped
    scored: list[int] = []
    apply = trl_utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply",
                        lambda hidden, *a: scored.append(hidden.shape[0]) or apply(hidden, *a))
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (3, 40), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, :7] = 0  # left padding of the prompt
    mask[1, -5:] = 0  # a completion shorter than the longest
    keep = 12
    logps, entropy, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep, compute_entropy=True)
    assert scored == [int(mask[:, -keep:].sum())]
    every_logps, every_entropy, _ = GRPOTrainer._get_per_token_logps_and_entropies(
        trainer, trainer.model, ids, mask, keep, compute_entropy=True)
    assert scored[1] == 3 * 39  # stock TRL on CPU: every position
    completion = mask[:, -keep:].bool()
    torch.testing.assert_close(logps[completion], every_logps[completion])
    torch.testing.assert_close(entropy[completion], every_entropy[completion])


@trains_here
def test_resuming_from_a_checkpoint_trains_on_the_advantages_of_a_run_that_did_not_stop(
        tiny_model_dir, toy_data, smollm_tokenizer, tmp_path):
    """Issue 22: the consult-frequency EMA is saved with every checkpoint (trainer_state.json) and restored on resume.
    Four steps in one go, and the same run resumed from its checkpoint at step 2, log the same EMA and the same
    advantages for steps 3 and 4 (without the saved state the EMA would start again from step 3's batch)."""
    rl = load_split(str(toy_data), "rl").select([0, 10])  # one group of 4 rollouts per step
    settings = dict(max_steps=4, save_strategy="steps", save_steps=2, max_completion_length=160,
                    ifpo_frequency="ema", ifpo_ema_decay=0.5, ifpo_w_min=0.1, ifpo_w_max=10.0)
    straight = build_ifpo_trainer(IFPOConfig(**ifpo_settings(tiny_model_dir, toy_data, tmp_path / "a",
                                                             smollm_tokenizer, **settings)), train_dataset=rl)
    straight.train()
    checkpoint = tmp_path / "a" / "checkpoint-2"
    saved = json.loads((checkpoint / "trainer_state.json").read_text())["stateful_callbacks"]
    assert saved["ConsultFrequencyCallback"]["attributes"]["value"] is not None

    resumed = build_ifpo_trainer(IFPOConfig(**ifpo_settings(tiny_model_dir, toy_data, tmp_path / "b",
                                                            smollm_tokenizer, **settings)), train_dataset=rl)
    resumed.train(resume_from_checkpoint=str(checkpoint))

    def steps(trainer) -> dict[int, dict]:
        return {h["step"]: h for h in trainer.state.log_history if "ifpo/consult_rate" in h}

    a, b = steps(straight), steps(resumed)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]  # the resumed log starts with the checkpoint's
    for step in (3, 4):
        # the same rollouts (RNG, weights and data order come back from the checkpoint) ...
        assert b[step]["ifpo/consult_rate"] == a[step]["ifpo/consult_rate"]
        assert b[step]["reward"] == pytest.approx(a[step]["reward"])
        # ... reweighted by the same moving average, so trained on the same advantages
        assert b[step]["ifpo/consult_frequency_ema"] == pytest.approx(a[step]["ifpo/consult_frequency_ema"])
        for name in ("consult", "direct"):
            key = f"ifpo/advantage/{name}"
            assert (key in b[step]) == (key in a[step])
            if key in a[step]:
                assert b[step][key] == pytest.approx(a[step][key], rel=1e-5)
    assert len({a[s]["ifpo/consult_rate"] for s in a}) > 1, "the steered policy should vary its consult rate"
