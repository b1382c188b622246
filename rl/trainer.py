"""`IFPOTrainer`: TRL's GRPOTrainer with IFPO advantages and the rule tool live in the rollouts.

TRL 1.16 has no advantage hook. `_generate_and_score_completions` computes the GRPO advantages of the whole
(gathered) batch, keeps this process's slice and returns it as ``output["advantages"]``; we reweight that slice
after the parent returns. The rollouts' modes come from the completions `_generate` returns (its tool-calling loop
appends each assistant turn with its `tool_calls`), captured per process, then gathered with accelerate so that
frequencies are counted over whole groups even when a group spans processes. With ``ifpo=None`` the trainer is plain
GRPO with the same logging, which makes the IFPO-vs-GRPO comparison one flag apart.

Logged (TRL's `_metrics`, so they reach `log_history`, TensorBoard, W&B): ``ifpo/consult_rate`` overall and per
prompt kind, ``ifpo/reward/<kind>``, ``ifpo/reward_by_mode/consult`` and ``ifpo/reward_by_mode/direct``, ``ifpo/weight/consult`` and ``ifpo/weight/direct`` (mean weight applied),
``ifpo/consult_frequency_ema`` in ``ema`` mode, and ``ifpo/reweight_seconds`` (the cost of the reweighting).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from accelerate.utils import gather_object
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from ascl_data.errors import InputError, Problem
from ascl_data.rl.config import IFPOSettings
from ascl_data.rl.data import load_split, require_columns
from ascl_data.rl.environment import RuleEnvironment, consulted
from ascl_data.rl.ifpo import ConsultFrequencyEMA, IFPOOptions, ifpo_weights
from ascl_data.judge import judge_config_for
from ascl_data.rl.rewards import default_reward_funcs
from ascl_data.rl.sft import peft_config, save_model


class IFPOTrainer(GRPOTrainer):
    """GRPOTrainer whose advantages are IFPO-reweighted by rollout mode (consult / direct)."""

    def __init__(
        self,
        *args: Any,
        ifpo: IFPOOptions | None = None,
        tool_schemas: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if tool_schemas is not None:
            self._use_tool_schemas(tool_schemas)
        self.ifpo = ifpo
        self._consult_ema = (
            ConsultFrequencyEMA(ifpo.ema_decay) if ifpo is not None and ifpo.frequency == "ema" else None
        )
        self._rollout_completions: list[Any] | None = None
        self._rollout_rewards: torch.Tensor | None = None

    def _use_tool_schemas(self, schemas: list[dict[str, Any]]) -> None:
        """Render `schemas` in the prompts instead of the ones TRL derives from the functions' docstrings, so RL
        prompts show the tool exactly as the build's traces (SFT) and evaluation do. Calls still go to the functions."""
        if self.environment_factories is not None:
            raise ValueError("tool_schemas cannot be combined with environment_factory")
        names = sorted(s["function"]["name"] for s in schemas)
        functions = sorted(f.__name__ for f in self._standalone_tools)
        if names != functions:
            raise ValueError(f"tool_schemas name {names} but the tools are {functions}")
        self.tools = list(schemas)  # read by prompt rendering and response parsing; execution uses the functions

    # -- capture what the parent computes but does not return ---------------------------------------------------
    def _generate(self, prompts: list) -> tuple:
        result = super()._generate(prompts)
        self._rollout_completions = result[3]  # (prompt_ids, completion_ids, tool_mask, completions, ...)
        return result

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list) -> torch.Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rollout_rewards = rewards_per_func  # gathered over processes, (N_global, n_funcs)
        return rewards_per_func

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
            weights = ifpo_weights(flags, self.num_generations, self.ifpo, frequency)
            n_local = len(inputs)
            start_idx = self.accelerator.process_index * n_local
            local_w = weights[start_idx : start_idx + n_local].to(output["advantages"].dtype)
            output["advantages"] = output["advantages"] * local_w
            metrics["ifpo/reweight_seconds"].append(time.perf_counter() - start)
            for name, mask in (("consult", flags), ("direct", ~flags)):
                if mask.any():
                    metrics[f"ifpo/weight/{name}"].append(weights[mask].mean().item())
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


def prepare_rl_dataset(ds: Dataset, env: RuleEnvironment, system_prompt: str = "adaptive") -> Dataset:
    """Keep the columns rollouts and rewards read (`prompt`, `kind`, `reference`, `category`), with the system prompt."""
    require_columns(ds, ("prompt", "kind"), "rl split")
    if "reference" not in ds.column_names:
        ds = ds.add_column("reference", [None] * len(ds))
    keep = [c for c in ("prompt", "kind", "reference", "category") if c in ds.column_names]
    return env.with_system_prompt(ds.select_columns(keep), system_prompt)


def build_ifpo_trainer(settings: IFPOSettings, train_dataset: Dataset | None = None) -> IFPOTrainer:
    """An IFPOTrainer (or plain GRPO with `algorithm: grpo`) for `settings`; `train_dataset` overrides the split."""
    env = RuleEnvironment(settings.ruleset)
    if train_dataset is None:
        train_dataset = load_split(settings.dataset, settings.split, settings.max_samples, settings.seed)
    train_dataset = prepare_rl_dataset(train_dataset, env, settings.system_prompt)
    reward_funcs = default_reward_funcs(settings.max_completion_length, judge_config_for(settings.dataset, settings.judge))
    reward_weights = None
    if settings.reward_weights is not None:
        names = [f.__name__ for f in reward_funcs]
        unknown = sorted(set(settings.reward_weights) - set(names))
        if unknown:
            raise InputError("config", [Problem("reward_weights", ",".join(unknown), f"unknown reward; rewards are {names}")])
        reward_weights = [settings.reward_weights.get(n, 1.0) for n in names]
    args = GRPOConfig(
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        max_tool_calling_iterations=settings.max_tool_calling_iterations,
        temperature=settings.temperature,
        top_p=settings.top_p,
        beta=settings.beta,
        reward_weights=reward_weights,
        use_vllm=settings.use_vllm,
        vllm_mode=settings.vllm_mode,
        **settings.trainer_args(),
    )
    return IFPOTrainer(
        model=settings.model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=train_dataset,
        tools=env.tools(),
        tool_schemas=[env.rule_tool.schema()],
        peft_config=peft_config(settings.lora),
        ifpo=settings.ifpo if settings.algorithm == "ifpo" else None,
    )


def run_ifpo(settings: IFPOSettings, train_dataset: Dataset | None = None) -> dict[str, Any]:
    """Train, save to `output_dir` (if `save_final`), return the final metrics and the per-step log history."""
    trainer = build_ifpo_trainer(settings, train_dataset)
    result = trainer.train()
    if settings.save_final:
        save_model(trainer, settings.output_dir)
    return {"global_step": result.global_step, **result.metrics, "log_history": trainer.state.log_history}
