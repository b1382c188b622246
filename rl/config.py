"""Training configs are TRL's own: `ASCLSFTConfig(trl.SFTConfig)` and `IFPOConfig(trl.GRPOConfig)`, read by
`trl.TrlParser` from a YAML file plus command-line flags, so every TRL field works as TRL documents it. The few fields
ASCL adds say what they are for in their `help`. The IFPO knobs are not listed here: `IFPOConfig` gets one
`ifpo_<name>` field per field of `ascl_data.rl.ifpo.IFPOOptions` (but `eps`, whose role TRL's own eps plays in
training), so a new option there is a config field at once.

`EvalSettings` (the `ascl-data eval` options) stays a Pydantic model: eval is not a TRL trainer.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from trl import GRPOConfig, SFTConfig, TrlParser

from ascl_data.errors import InputError, Problem, load_yaml
from ascl_data.judge import JudgeConfig, judge_config_for
from ascl_data.rl.ifpo import IFPOOptions

C = TypeVar("C")


@dataclass
class _ASCLFields:
    """What a training run reads besides TRL's own fields: the model, the split of a built dataset, LoRA.
    Names follow TRL's `ScriptArguments` and `ModelConfig`, so they read as in TRL's example scripts."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Model to train: a local folder or a Hub id. Required."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "A folder written by `ascl-data build` (or `ascl_data.rl.toy`), a .parquet/.jsonl file "
                          "whose rows are the split, or a Hub dataset id. Required."},
    )
    max_samples: int | None = field(
        default=None, metadata={"help": "Train on a seeded random subset of this many rows of the split."}
    )
    use_peft: bool = field(
        default=False, metadata={"help": "Train LoRA adapters (peft) instead of all weights; merged on save."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (with use_peft)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (with use_peft)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout (with use_peft)."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules LoRA adapts (with use_peft); default: all linear layers."}
    )

    def _check_required(self) -> None:
        missing = [n for n in ("model_name_or_path", "dataset_name") if getattr(self, n) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required")
        for name in ("model_name_or_path", "dataset_name"):
            value = getattr(self, name)
            if value.startswith("~"):
                setattr(self, name, str(Path(value).expanduser()))

    def peft_config(self) -> Any:
        """A peft LoraConfig with `use_peft`, else None (peft is only imported when LoRA is asked for)."""
        if not self.use_peft:
            return None
        try:
            from peft import LoraConfig
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("use_peft needs peft: pip install 'ascl-data[peft]'") from exc
        return LoraConfig(
            r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
            target_modules=self.lora_target_modules or "all-linear", task_type="CAUSAL_LM",
        )


@dataclass
class ASCLSFTConfig(SFTConfig, _ASCLFields):
    """`ascl-data train sft`: TRL's SFTConfig on the `sft` split, loss on assistant turns only."""

    dataset_train_split: str = field(default="sft", metadata={"help": "The split to train on."})
    reasoning: Literal["inline", "drop"] = field(
        default="inline",
        metadata={"help": "An assistant turn's reasoning_content: rendered as <think>...</think> before its content "
                          "(inline), or dropped."},
    )
    assistant_only_loss: bool = field(
        default=True,
        metadata={"help": "Loss on assistant turns only (tool calls and answers); system, user and tool-result "
                          "tokens are masked. TRL's default is False; ASCL traces want True."},
    )

    def __post_init__(self) -> None:
        self._check_required()
        super().__post_init__()


@dataclass
class _IFPOBase(GRPOConfig, _ASCLFields):
    dataset_train_split: str = field(default="rl", metadata={"help": "The split of prompts to roll out."})
    algorithm: Literal["ifpo", "grpo"] = field(
        default="ifpo",
        metadata={"help": "ifpo: GRPO advantages reweighted by rollout mode (the ifpo_* fields); grpo: plain GRPO "
                          "with the same trainer and logging, for comparison."},
    )
    ruleset: str = field(
        default="default",
        metadata={"help": "The rule book the rollouts' retrieve_safety_rules tool searches: a shipped name or a YAML "
                          "file. Use the one the dataset was built with."},
    )
    cpu_lm_head_completion_only: bool = field(
        default=False,
        metadata={"help": "On CPU, have TRL's LM head score the completion positions only, as TRL does on GPUs, not the "
                          "prompt too: the same log-probabilities for less LM-head work (a win with long prompts and "
                          "a large vocabulary; docs/training.md has the measurement). It patches a private TRL "
                          "function while the loss forward runs, so it is opt-in."},
    )
    judge: dict | str | None = field(
        default=None,
        metadata={"help": "The judge config the rewards score by (a mapping, JSON text or a .json/.yaml file; the "
                          "fields of a recipe's `judge:`). Default: the one the dataset was built with (its "
                          "judge.json), else the defaults."},
    )

    def __post_init__(self) -> None:
        self._check_required()
        super().__post_init__()
        self.ifpo_options()  # an impossible option fails now, before any model loads
        self.judge_config()
        if self.algorithm == "ifpo" and (self.scale_rewards, self.multi_objective_aggregation) != (
            "group", "sum_then_normalize"
        ):
            raise ValueError(
                "scale_rewards, multi_objective_aggregation: IFPO reweights GRPO's group advantages, so it needs "
                "scale_rewards: group and multi_objective_aggregation: sum_then_normalize (TRL's defaults)"
            )

    def judge_config(self) -> JudgeConfig:
        """The judge config the rewards use: `judge` if given, else the one recorded with the dataset."""
        judge = self.judge
        if isinstance(judge, str):
            path = Path(judge).expanduser()
            text = path.read_text(encoding="utf-8") if path.is_file() else judge
            try:
                judge = load_yaml(text)[0]
            except yaml.YAMLError as exc:
                raise ValueError(f"judge: neither a file nor valid JSON/YAML: {exc}") from None
        if judge is not None and not isinstance(judge, dict):
            raise ValueError(f"judge: expected a mapping of judge config fields, got {judge!r}")
        try:
            return judge_config_for(self.dataset_name, judge)
        except InputError as exc:
            raise ValueError("judge: " + "; ".join(f"{p.field or p.where}: {p.message}" for p in exc.problems)) from None

    def ifpo_options(self) -> IFPOOptions | None:
        """The `IFPOOptions` the `ifpo_*` fields make, or None with `algorithm: grpo`."""
        if self.algorithm == "grpo":
            return None
        values = {f.name: getattr(self, f"ifpo_{f.name}") for f in _config_options()}
        try:
            return IFPOOptions(**values)
        except ValueError as exc:
            named = [f"ifpo_{n}" for n in values if n in str(exc)] or [f"ifpo_{n}" for n in values]
            raise ValueError(f"{', '.join(named)}: {exc}") from None


def _config_options() -> list[dataclasses.Field]:
    """The `IFPOOptions` fields a config sets (not `eps`: the trainer reweights TRL's advantages, whose eps is TRL's)."""
    return [f for f in dataclasses.fields(IFPOOptions) if f.metadata.get("config", True)]


def _ifpo_fields() -> list[tuple[str, Any, Any]]:
    """One `ifpo_<name>` config field per `IFPOOptions` field, with its type, default and help."""
    hints = typing.get_type_hints(IFPOOptions)
    out = []
    for f in _config_options():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_ = f.metadata.get("help") or f"IFPOOptions.{f.name} (see ascl_data.rl.ifpo); with algorithm: ifpo."
        out.append((f"ifpo_{f.name}", hints[f.name], field(default=default, metadata={"help": help_})))
    return out


IFPOConfig = dataclasses.make_dataclass("IFPOConfig", _ifpo_fields(), bases=(_IFPOBase,))
IFPOConfig.__module__ = __name__  # picklable (accelerate and multiprocessing copy the args)
IFPOConfig.__doc__ = (
    "`ascl-data train ifpo`: TRL's GRPOConfig with IFPO's options (`ifpo_<name>` for each `IFPOOptions` field), "
    "on the `rl` split, with the rule tool live in the rollouts."
)


class _ConfigParser(TrlParser):
    """TrlParser whose argparse errors raise (the CLI turns them into one clear message) instead of exiting."""

    def error(self, message: str) -> typing.NoReturn:
        raise ValueError(message)


def config_parser(config_class: type) -> TrlParser:
    return _ConfigParser(config_class)


def parse_config(config_class: type[C], path: str | Path, args: list[str] | tuple[str, ...] = ()) -> C:
    """Read `config_class` from the YAML file `path`, then command-line flags `args` (`--max_steps 5`) on top, as
    `trl.TrlParser` does. Any problem (an unknown field, a wrong value, an impossible option) is an InputError that
    names the file and the field."""
    path = Path(path)
    what = f"config {path}"
    if not path.is_file():
        raise InputError(what, [Problem(str(path), "", "file not found")])
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))[0]
    except yaml.YAMLError as exc:
        raise InputError(what, [Problem(str(path), "", f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise InputError(what, [Problem(str(path), "", "expected a mapping of config fields")])
    known = {f.name for f in dataclasses.fields(config_class)} | {"env"}  # `env`: TrlParser's environment variables
    unknown = [k for k in data if k not in known]
    if unknown:
        raise InputError(what, [Problem(str(path), str(k), _unknown(str(k), known)) for k in unknown])
    try:
        (config,) = config_parser(config_class).parse_args_and_config(["--config", str(path), *args])
    except (ValueError, TypeError) as exc:
        raise InputError(what + (f" with {' '.join(args)}" if args else ""), [Problem(str(path), "", str(exc))]) from None
    return config


def _unknown(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return "unknown field" + (f" (did you mean {close[0]}?)" if close else "") + "; `--help` lists the fields"
