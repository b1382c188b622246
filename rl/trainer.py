"""`IFPOTrainer`: TRL's GRPOTrainer with IFPO advantages; the rule tool is live in the rollouts.

TRL 1.16 has no advantage hook, so the trainer overrides three private methods (hence TRL is pinned to 1.16.x), and a
fourth, `_get_per_token_logps_and_entropies`, so that on CPU the LM head scores the completion only, not the prompt.
`_generate` and `_calculate_rewards` are wrapped only to keep what they return: the completions (whose assistant
turns carry `tool_calls`, hence each rollout's mode) and the rewards of the whole gathered batch. After the parent's
`_generate_and_score_completions`, the modes are gathered over processes (a group may span processes), the IFPO
advantages of the whole batch are computed by `ascl_data.rl.ifpo.ifpo_advantages`, and this process's slice replaces
TRL's GRPO advantages, both in what is trained on and in what TRL logs (`log_completions`' advantage column).
`algorithm: grpo` is plain GRPO with the same logging: the IFPO-vs-GRPO comparison is one field apart.

Nothing else is changed: the prompts (with the `rl` split's stored system message) and the tool schema are what a
stock `GRPOTrainer(tools=[RuleTool(...).as_function()])` renders.

Logged (TRL's `_metrics`, so they reach `trainer_state.json`, TensorBoard, W&B): ``ifpo/consult_rate`` overall and
per prompt kind, ``ifpo/reward/<kind>``, ``ifpo/reward_by_mode/<mode>``, ``ifpo/advantage/<mode>`` (mean |advantage|
trained on), ``ifpo/consult_frequency_ema`` in ``ema`` mode, and ``ifpo/reweight_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import trl.trainer.utils as trl_utils
from accelerate.utils import gather_object
from datasets import Dataset
from trl import GRPOTrainer

from ascl_data.rl.config import IFPOConfig
from ascl_data.rl.data import load_split, require_columns
from ascl_data.rl.environment import consulted
from ascl_data.rl.ifpo import ConsultFrequencyEMA, IFPOOptions, ifpo_advantages
from ascl_data.rl.rewards import default_reward_funcs
from ascl_data.rl.sft import train_and_save
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset


@contextmanager
def _score_completion_only_on_cpu() -> Iterator[None]:
    """TRL 1.16's fused LM head projects only the labelled (completion) positions on Triton devices, and every
    position elsewhere (fixed shapes for XLA-like backends). On CPU that is the prompt too: with a 624-token prompt
    and a 49k vocabulary, three times the LM head's work in forward and backward. TRL decides by its
    `_use_triton(device)`, so CPU is added to it while the loss forward runs; the kernels themselves read their own."""
    use_triton = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type == "cpu" or use_triton(device)
    try:
        yield
    finally:
        trl_utils._use_triton = use_triton


class IFPOTrainer(GRPOTrainer):
    """GRPOTrainer whose advantages are IFPO-reweighted by rollout mode (consult / direct); `args` is an
    `IFPOConfig` (its `ifpo_*` fields; `algorithm: grpo` keeps GRPO's advantages)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        options = getattr(self.args, "ifpo_options", None)
        self.ifpo: IFPOOptions | None = options() if options is not None else None
        self._consult_ema = (
            ConsultFrequencyEMA(self.ifpo.ema_decay) if self.ifpo is not None and self.ifpo.frequency == "ema" else None
        )
        self._rollout_completions: list[Any] | None = None
        self._rollout_rewards: torch.Tensor | None = None

    # -- capture what the parent computes but does not return ---------------------------------------------------
    def _generate(self, prompts: list) -> tuple:
        result = super()._generate(prompts)
        self._rollout_completions = result[3]  # (prompt_ids, completion_ids, tool_mask, completions, ...)
        return result

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list) -> torch.Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rollout_rewards = rewards_per_func  # gathered over processes, (N_global, n_funcs)
        return rewards_per_func

    def _get_per_token_logps_and_entropies(self, *args: Any, **kwargs: Any) -> tuple:
        with _score_completion_only_on_cpu():
            return super()._get_per_token_logps_and_entropies(*args, **kwargs)

    # -- the IFPO step -------------------------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        device = self.accelerator.device
        completions = self._rollout_completions or []
        local = torch.tensor([int(consulted(c)) for c in completions], dtype=torch.long, device=device)
        flags = self.accelerator.gather(local).bool()  # every process sees every group's modes, in TRL's order
        kinds = gather_object([str(x.get("kind")) for x in inputs])
        metrics = self._metrics[mode]

        if self.ifpo is not None and mode == "train":
            start = time.perf_counter()
            frequency = self._consult_ema.update(flags) if self._consult_ema is not None else None
            rewards = (self._rollout_rewards * self.reward_weights.to(device).unsqueeze(0)).nansum(dim=1)
            advantages = ifpo_advantages(rewards, flags, self.num_generations, self.ifpo, frequency)
            n_local = len(inputs)
            start_idx = self.accelerator.process_index * n_local
            output["advantages"] = advantages[start_idx : start_idx + n_local].to(output["advantages"].dtype)
            # TRL logged GRPO's advantages of the whole batch (completions table, `log_completions`): log ours instead
            logged = self._logs["advantages"]
            for _ in range(min(len(advantages), len(logged))):
                logged.pop()
            logged.extend(advantages.tolist())
            metrics["ifpo/reweight_seconds"].append(time.perf_counter() - start)
            for name, mask in (("consult", flags), ("direct", ~flags)):
                if mask.any():
                    metrics[f"ifpo/advantage/{name}"].append(advantages[mask].abs().mean().item())
            if frequency is not None:
                metrics["ifpo/consult_frequency_ema"].append(frequency)

        self._log_modes(metrics, flags, kinds)
        return output

    def _log_modes(self, metrics: dict[str, list[float]], flags: torch.Tensor, kinds: list[str]) -> None:
        flags = flags.float().cpu()
        metrics["ifpo/consult_rate"].append(flags.mean().item())
        total = None
        if self._rollout_rewards is not None and len(self._rollout_rewards) == len(kinds):
            weights = self.reward_weights.to(self._rollout_rewards.device)
            total = (self._rollout_rewards * weights.unsqueeze(0)).nansum(dim=1).cpu()
        for kind in sorted(set(kinds)):
            idx = torch.tensor([k == kind for k in kinds])
            metrics[f"ifpo/consult_rate/{kind}"].append(flags[idx].mean().item())
            if total is not None:
                metrics[f"ifpo/reward/{kind}"].append(total[idx].mean().item())
        if total is not None:  # which mode the rewards favour: what drives consultation up or down
            for name, mask in (("consult", flags.bool()), ("direct", ~flags.bool())):
                if mask.any():
                    metrics[f"ifpo/reward_by_mode/{name}"].append(total[mask].mean().item())


def prepare_rl_dataset(ds: Dataset) -> Dataset:
    """Keep the columns rollouts and rewards read (`prompt` with its stored system message, `kind`, `reference`,
    `category`)."""
    require_columns(ds, ("prompt", "kind"), "rl split")
    if "reference" not in ds.column_names:
        ds = ds.add_column("reference", [None] * len(ds))
    return ds.select_columns([c for c in ("prompt", "kind", "reference", "category") if c in ds.column_names])


def build_ifpo_trainer(config: IFPOConfig, train_dataset: Dataset | None = None) -> IFPOTrainer:
    """An IFPOTrainer for `config` (itself the trainer's args); `train_dataset` overrides loading the split."""
    if train_dataset is None:
        train_dataset = load_split(config.dataset_name, config.dataset_train_split, config.max_samples, config.seed)
    return IFPOTrainer(
        model=config.model_name_or_path,
        reward_funcs=default_reward_funcs(config.max_completion_length, config.judge_config()),
        args=config,
        train_dataset=prepare_rl_dataset(train_dataset),
        tools=[RuleTool(load_ruleset(config.ruleset)).as_function()],
        peft_config=config.peft_config(),
    )


def run_ifpo(config: IFPOConfig, train_dataset: Dataset | None = None) -> dict[str, Any]:
    """Train, save to `output_dir`, return the final metrics and the per-step log history."""
    trainer = build_ifpo_trainer(config, train_dataset)
    result = train_and_save(trainer, config.resume_from_checkpoint)
    return {"global_step": result.global_step, **result.metrics, "log_history": trainer.state.log_history}
