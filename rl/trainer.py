"""`IFPOTrainer`: TRL's GRPOTrainer with IFPO advantages; the rule tool is live in the rollouts.

How it touches TRL (issue 22: at arm's length). TRL has no advantage hook, so there is one override of a private
method, `_generate_and_score_completions`: it calls TRL's own (rollouts, tool loop, rewards, GRPO advantages, TRL's
logging: all unchanged), gathers TRL's advantages of the whole batch with `accelerator.gather` (a prompt's group may
span processes), reweights them by `ascl_data.rl.ifpo.rebalance_advantages`, and puts this process's slice back in the
returned dict. GRPO's normalisation is TRL's: IFPO starts from TRL's numbers, so `scale_rewards` and TRL's eps are the
ones trained with. Everything else goes through public API:

- Rollout modes and raw rewards: the reward functions are wrapped (same names, same results, so TRL sees what it
  would see) to keep what TRL passes them, on each process: the completions (an assistant turn with `tool_calls` is
  a consult) and each function's rewards. Those are gathered with `accelerator.gather`; the raw rewards feed the
  logged metrics only (`ifpo/reward/*`), IFPO itself reweights TRL's advantages.
- Logging: `Trainer.log`, the method transformers documents for adding to the logs, so the metrics reach
  `trainer_state.json`, TensorBoard and W&B as TRL's own do.
- The consult-frequency EMA of `ifpo_frequency: ema` lives in `ConsultFrequencyCallback`, a `TrainerCallback` with
  transformers' `ExportableState`, so it is saved in every checkpoint's `trainer_state.json` and comes back on resume.
- The CPU LM-head speed-up (`cpu_lm_head_completion_only`, off by default) is the one opt-in that patches a TRL
  internal, `trl.trainer.utils._use_triton`, while the loss forward runs.

One reach into TRL's internals remains: TRL writes the advantages of each batch into its completions log
(`log_completions`' table and printout) before the override sees them, so the override replaces those last entries
of `_logs["advantages"]` with the advantages trained on (`_show_trained_advantages`; skipped if a TRL release
keeps no such log). There is no public way to do that.

`algorithm: grpo` is plain GRPO with the same logging: the IFPO-vs-GRPO comparison is one field apart. The prompts
(with the `rl` split's stored system message) and the tool schema are what a stock
`GRPOTrainer(tools=[RuleTool(...).as_function()])` renders.

Logged: ``ifpo/consult_rate`` overall and per prompt kind, ``ifpo/reward/<kind>`` and ``ifpo/reward_by_mode/<mode>``
(weighted sum of the reward functions, a function's None counted as 0), ``ifpo/advantage/<mode>`` (mean |advantage|
trained on), ``ifpo/consult_frequency_ema`` in ``ema`` mode, and ``ifpo/reweight_seconds``.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.utils import gather_object
from datasets import Dataset
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from trl import GRPOTrainer

from ascl_data.rl.config import IFPOConfig
from ascl_data.rl.data import load_split, require_columns
from ascl_data.rl.environment import consulted
from ascl_data.rl.ifpo import ConsultFrequencyEMA, IFPOOptions, rebalance_advantages
from ascl_data.rl.rewards import default_reward_funcs
from ascl_data.rl.sft import train_and_save
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset


class ConsultFrequencyCallback(ConsultFrequencyEMA, TrainerCallback, ExportableState):
    """The moving average of the consult fraction (`ifpo_frequency: ema`) as trainer state: transformers saves
    `state()` in each checkpoint's `trainer_state.json` (`stateful_callbacks`), and `on_train_begin` takes it back
    from the checkpoint a run resumes from, whatever `restore_callback_states_from_checkpoint` says (the EMA is part
    of the optimisation, like the optimizer's moments)."""

    def state(self) -> dict:
        return {"args": {"decay": self.decay}, "attributes": {"value": self.value}}

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - TrainerCallback's signature
        saved = state.stateful_callbacks.get(type(self).__name__)
        if isinstance(saved, list):  # transformers keeps a list when several callbacks share a class name
            saved = saved[0] if saved else None
        if saved is None:  # a checkpoint written without this callback: saving needs the key
            state.stateful_callbacks[type(self).__name__] = self.state()
        elif state.global_step > 0:  # resumed: the checkpoint's value (a fresh run's state is this object's own)
            self.value = saved.get("attributes", {}).get("value")


@dataclass
class RolloutBatch:
    """The last generation batch as IFPO saw it. `completions`: this process's, as TRL passed them to the reward
    functions; the rest gathered over processes, in TRL's order (rank after rank): `consulted` (the modes),
    `kinds`, `rewards_per_func` ((N, reward functions), NaN where a function returned None; None if a reward function
    is a model, which is not wrapped)."""

    completions: list[Any] = field(default_factory=list)
    consulted: torch.Tensor | None = None
    kinds: list[str] = field(default_factory=list)
    rewards_per_func: torch.Tensor | None = None


class _RewardRecorder:
    """Wraps reward functions to keep, per batch, the completions TRL passes them and the rewards they return."""

    def __init__(self) -> None:
        self.completions: list[Any] | None = None
        self.rewards: dict[int, list[float | None]] = {}

    def clear(self) -> None:
        self.completions, self.rewards = None, {}

    def _keep(self, index: int, kwargs: dict[str, Any], out: Any) -> None:
        if self.completions is None:
            self.completions = list(kwargs.get("completions") or [])
        self.rewards[index] = list(out)

    def wrap(self, func: Callable, index: int) -> Callable:
        if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None)):

            async def recorded_async(*args: Any, **kwargs: Any) -> Any:
                out = await func(*args, **kwargs)
                self._keep(index, kwargs, out)
                return out

            return _named_like(recorded_async, func)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            out = func(*args, **kwargs)
            self._keep(index, kwargs, out)
            return out

        return _named_like(recorded, func)


def _named_like(wrapper: Callable, func: Callable) -> Callable:
    """`functools.wraps`, with the name TRL shows for `func` (a callable object's is its class name)."""
    functools.update_wrapper(wrapper, func, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
    while isinstance(func, functools.partial):
        func = func.func
    wrapper.__name__ = getattr(func, "__name__", type(func).__name__)
    return wrapper


@contextmanager
def _score_completion_only_on_cpu() -> Iterator[None]:
    """TRL's fused LM head projects only the labelled (completion) positions on Triton devices, and every position
    elsewhere (fixed shapes for XLA-like backends). On CPU that is the prompt too. TRL decides by its private
    `_use_triton(device)`, so CPU is added to it while the loss forward runs; the kernels themselves read their own."""
    import trl.trainer.utils as trl_utils

    use_triton = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type == "cpu" or use_triton(device)
    try:
        yield
    finally:
        trl_utils._use_triton = use_triton


def _completion_only_lm_head(method: Callable) -> Callable:
    """`method` (the trainer's `_get_per_token_logps_and_entropies`) run with `_score_completion_only_on_cpu`. TRL
    releases without `_use_triton` (1.15) project the labelled positions only on every device: nothing to do."""
    import trl.trainer.utils as trl_utils

    if not callable(getattr(trl_utils, "_use_triton", None)):
        return method

    @functools.wraps(method)
    def scored_on_completion(*args: Any, **kwargs: Any) -> Any:
        with _score_completion_only_on_cpu():
            return method(*args, **kwargs)

    return scored_on_completion


class IFPOTrainer(GRPOTrainer):
    """GRPOTrainer whose advantages are IFPO-reweighted by rollout mode (consult / direct); `args` is an
    `IFPOConfig` (its `ifpo_*` fields; `algorithm: grpo` keeps GRPO's advantages)."""

    def __init__(self, model: Any, reward_funcs: Any = None, *args: Any, **kwargs: Any):
        funcs = reward_funcs if isinstance(reward_funcs, list) else [] if reward_funcs is None else [reward_funcs]
        if not any(_plain_callable(f) for f in funcs):
            raise ValueError("reward_funcs: IFPOTrainer reads the rollouts' modes through a reward function; pass at "
                             "least one callable (not only reward models)")
        self._recorder = _RewardRecorder()
        self._n_recorded = len(funcs) if all(_plain_callable(f) for f in funcs) else None
        funcs = [self._recorder.wrap(f, i) if _plain_callable(f) else f for i, f in enumerate(funcs)]
        super().__init__(model, funcs, *args, **kwargs)
        options = getattr(self.args, "ifpo_options", None)
        self.ifpo: IFPOOptions | None = options() if options is not None else None
        self.add_callback(ConsultFrequencyCallback(self.ifpo.ema_decay if self.ifpo is not None else 0.9))
        self.rollouts = RolloutBatch()
        self.ifpo_metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        if getattr(self.args, "cpu_lm_head_completion_only", False):
            self._get_per_token_logps_and_entropies = _completion_only_lm_head(self._get_per_token_logps_and_entropies)

    @property
    def consult_frequency(self) -> ConsultFrequencyCallback:
        """The EMA state (looked up each time: resuming may replace the callback with one built from the checkpoint)."""
        return next(cb for cb in self.callback_handler.callbacks if isinstance(cb, ConsultFrequencyCallback))

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        self._recorder.clear()
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        metrics = self.ifpo_metrics[mode]
        start = time.perf_counter()
        batch = self._gather_rollouts(inputs)
        if self.ifpo is not None and mode == "train":
            advantages = self.accelerator.gather(output["advantages"])  # TRL's GRPO advantages, the whole batch
            frequency = self.consult_frequency.update(batch.consulted) if self.ifpo.frequency == "ema" else None
            advantages = rebalance_advantages(advantages, batch.consulted, self.num_generations, self.ifpo, frequency)
            n_local = len(inputs)
            own = slice(self.accelerator.process_index * n_local, (self.accelerator.process_index + 1) * n_local)
            output["advantages"] = advantages[own].to(output["advantages"].dtype)
            self._show_trained_advantages(advantages)
            metrics["ifpo/reweight_seconds"].append(time.perf_counter() - start)
            for name, mask in (("consult", batch.consulted), ("direct", ~batch.consulted)):
                if mask.any():
                    metrics[f"ifpo/advantage/{name}"].append(advantages[mask].abs().mean().item())
            if frequency is not None:
                metrics["ifpo/consult_frequency_ema"].append(frequency)
        self._log_modes(metrics, batch)
        return output

    def _gather_rollouts(self, inputs: list[dict[str, Any]]) -> RolloutBatch:
        """This batch's modes, kinds and (if every reward function is wrapped) rewards, gathered over processes."""
        completions = self._recorder.completions
        if completions is None or len(completions) != len(inputs):
            raise RuntimeError("IFPO: the reward functions did not see this batch's completions")
        device = self.accelerator.device
        columns = [[float(consulted(c)) for c in completions]]
        if self._n_recorded is not None:
            columns += [[torch.nan if r is None else float(r) for r in self._recorder.rewards[i]]
                        for i in range(self._n_recorded)]
        gathered = self.accelerator.gather(torch.tensor(columns, dtype=torch.float32, device=device).T.contiguous())
        self.rollouts = RolloutBatch(
            completions=completions,
            consulted=gathered[:, 0].bool(),
            kinds=gather_object([str(x.get("kind")) for x in inputs]),
            rewards_per_func=gathered[:, 1:] if self._n_recorded is not None else None,
        )
        return self.rollouts

    def _show_trained_advantages(self, advantages: torch.Tensor) -> None:
        """TRL logged GRPO's advantages of this batch for its completions table (`log_completions`) before the
        reweighting: replace them with the ones trained on. The only write into TRL's internals; skipped if this TRL
        keeps no such log."""
        logged = getattr(self, "_logs", {}).get("advantages")
        if logged is None or len(logged) < len(advantages):
            return
        for _ in range(len(advantages)):
            logged.pop()
        logged.extend(advantages.tolist())

    def _log_modes(self, metrics: dict[str, list[float]], batch: RolloutBatch) -> None:
        flags = batch.consulted.float().cpu()
        metrics["ifpo/consult_rate"].append(flags.mean().item())
        total = None
        if batch.rewards_per_func is not None:
            weights = self.reward_weights.to(batch.rewards_per_func.device)[: batch.rewards_per_func.shape[1]]
            total = (batch.rewards_per_func * weights.unsqueeze(0)).nansum(dim=1).cpu()
        for kind in sorted(set(batch.kinds)):
            idx = torch.tensor([k == kind for k in batch.kinds])
            metrics[f"ifpo/consult_rate/{kind}"].append(flags[idx].mean().item())
            if total is not None:
                metrics[f"ifpo/reward/{kind}"].append(total[idx].mean().item())
        if total is not None:  # which mode the rewards favour: what drives consultation up or down
            for name, mask in (("consult", flags.bool()), ("direct", ~flags.bool())):
                if mask.any():
                    metrics[f"ifpo/reward_by_mode/{name}"].append(total[mask].mean().item())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The ifpo/* metrics of the batches since the last log, averaged, added to TRL's (`eval_` in evaluation)."""
        mode = "train" if self.model.training else "eval"
        prefix = "" if mode == "train" else "eval_"
        logs.update({prefix + k: sum(v) / len(v) for k, v in self.ifpo_metrics[mode].items() if v})
        self.ifpo_metrics[mode].clear()
        super().log(logs, start_time)


def _plain_callable(func: Any) -> bool:
    """A reward function IFPOTrainer can wrap: a callable, not a model (a Hub id or an nn.Module)."""
    return callable(func) and not isinstance(func, (str, torch.nn.Module))


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
