"""Training and evaluation configs: Pydantic models loaded from YAML (errors name file, line and field), with
`--set key=value` overrides from the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ascl_data.errors import InputError, Problem, load_yaml_model, validation_problems
from ascl_data.judge import JudgeConfig
from ascl_data.rl.ifpo import IFPOOptions

C = TypeVar("C", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _expand_home(value: str) -> str:
    return str(Path(value).expanduser()) if value.startswith("~") else value


class LoraSettings(_Strict):
    """LoRA through peft; leave `lora` out of the config for full fine-tuning."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"


class _TrainCommon(_Strict):
    model: str = Field(description="a local folder or a Hub id")
    dataset: str = Field(description="a folder written by `ascl-data build`, a parquet/jsonl file, or a Hub id")
    output_dir: str
    max_samples: int | None = Field(None, ge=1)
    max_steps: int = Field(-1, description="-1: run num_train_epochs")
    num_train_epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(1e-5, gt=0)
    per_device_train_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    gradient_checkpointing: bool = False
    bf16: bool = False
    seed: int = 0
    logging_steps: int = Field(1, ge=1)
    save_strategy: Literal["no", "steps", "epoch"] = "no"
    save_final: bool = True
    lora: LoraSettings | None = None
    report_to: list[str] = Field(default_factory=list)
    trl_args: dict[str, Any] = Field(
        default_factory=dict, description="any further TRL config field, passed through as is"
    )

    _paths = field_validator("model", "dataset", "output_dir")(classmethod(lambda cls, v: _expand_home(v)))

    def trainer_args(self) -> dict[str, Any]:
        """The TrainingArguments fields SFT and IFPO share, with `trl_args` passed through last."""
        common = (
            "output_dir", "max_steps", "num_train_epochs", "learning_rate", "per_device_train_batch_size",
            "gradient_accumulation_steps", "gradient_checkpointing", "bf16", "seed", "logging_steps",
            "save_strategy", "report_to",
        )
        return {**{name: getattr(self, name) for name in common}, **self.trl_args}


class SFTSettings(_TrainCommon):
    """`ascl-data train sft CONFIG`: supervised fine-tuning on the `sft` split with assistant-only loss."""

    split: str = "sft"
    max_length: int | None = Field(2048, ge=16)
    reasoning: Literal["inline", "drop"] = Field(
        "inline", description="reasoning_content rendered as <think>...</think> in the content, or dropped"
    )
    learning_rate: float = Field(2e-5, gt=0)


class IFPOSettings(_TrainCommon):
    """`ascl-data train ifpo CONFIG`: GRPO with IFPO advantages on the `rl` split, the rule tool live in rollouts."""

    split: str = "rl"
    algorithm: Literal["ifpo", "grpo"] = "ifpo"
    ifpo: IFPOOptions = Field(default_factory=IFPOOptions)
    ruleset: str = Field("default", description="a shipped rule book name or a YAML file")
    system_prompt: Literal["adaptive", "none"] | str = Field(
        "adaptive", description="prepended to prompts without a system turn: the adaptive generator's, none, or text"
    )
    num_generations: int = Field(4, ge=2)
    max_completion_length: int = Field(512, ge=8)
    max_tool_calling_iterations: int = Field(2, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    beta: float = Field(0.0, ge=0)
    judge: JudgeConfig | None = Field(
        None, description="how rewards judge answers; default: the judge config the dataset was built with"
    )
    reward_weights: dict[str, float] | None = Field(
        None, description="by reward name (safety_reward, reasoning_reward, format_reward); default all 1"
    )
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    learning_rate: float = Field(1e-6, gt=0)

    @model_validator(mode="after")
    def _batch_fits_groups(self) -> IFPOSettings:
        # TRL's rule: the global generation batch splits into whole groups; a group may span processes.
        world = int(os.environ.get("WORLD_SIZE", "1"))
        total = self.per_device_train_batch_size * self.gradient_accumulation_steps * world
        if total % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size * gradient_accumulation_steps * processes ({total}, with {world} "
                f"process(es)) must be a multiple of num_generations ({self.num_generations})"
            )
        return self


class EvalSettings(_Strict):
    """`ascl-data eval`: safety, over-refusal, accuracy and consultation per kind on the `eval` split."""

    model: str
    dataset: str
    split: str = "eval"
    ruleset: str = "default"
    system_prompt: Literal["adaptive", "none"] | str = "adaptive"
    backend: Literal["transformers", "vllm"] = "transformers"
    backend_settings: dict[str, Any] = Field(
        default_factory=dict, description="passed to the backend, e.g. dtype, max_model_len, batch_size, num_threads"
    )
    max_samples: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    max_turns: int = Field(3, ge=1)
    seed: int = 0

    _paths = field_validator("model", "dataset")(classmethod(lambda cls, v: _expand_home(v)))


def parse_overrides(overrides: list[str], option: str = "--set") -> dict[str, Any]:
    """`["a.b=1", "c=x"]` -> `{"a": {"b": 1}, "c": "x"}`; values are YAML, so numbers and booleans keep their type."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(option, [Problem(option, item, "expected key=value (dotted keys for nesting)")])
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def load_config(path: str | Path, model: type[C], overrides: list[str] | None = None) -> C:
    """Load a YAML config into `model`, then apply `key=value` overrides (validated again, errors say `--set`)."""
    config = load_yaml_model(path, model, what=f"config {path}")
    if not overrides:
        return config
    data = _merge(config.model_dump(), parse_overrides(overrides))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"config {path} with --set overrides", validation_problems(exc, "--set")) from None
