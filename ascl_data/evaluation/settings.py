"""`EvalSettings`: what `ascl-data eval` runs (a YAML file under `configs/eval*.yaml`, or the command's options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ascl_data.backends.names import BackendName, known_backends
from ascl_data.backends.settings import check_settings
from ascl_data.judge.config import JudgeConfig
from ascl_data.schemas import Kind

Mode = Literal["live", "none", "system"]
MODES: tuple[str, ...] = ("live", "none", "system")


class CustomBenchmark(BaseModel):
    """A user's own benchmark: a local file or folder (or a built dataset folder, or a Hub id) and its columns."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str = Field(description="a .jsonl/.parquet/.csv file, a folder written by `ascl-data build`, or a Hub id")
    split: str = Field("eval", description="the split of a built dataset folder or a Hub id")
    prompt: str = Field("prompt", description="column with the user text or a list of chat messages")
    kind: Kind | None = Field(None, description="the kind of every prompt; or give kind_column")
    kind_column: str | None = None
    reference: str | None = Field(None, description="column with the answer (reasoning): a number or expression, "
                                                    "or the correct letter when `choices` is given")
    choices: str | None = Field(None, description="column with a list of options: scored as multiple choice")

    @model_validator(mode="after")
    def _one_kind(self) -> CustomBenchmark:
        if (self.kind is None) == (self.kind_column is None):
            raise ValueError("give exactly one of kind (the same for every row) or kind_column")
        return self


class EvalSettings(BaseModel):
    """`ascl-data eval`: public safety, over-refusal and reasoning benchmarks under one or more rule modes."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="a local folder, a Hub id, `embedded`, or the served model name (openai)")
    backend: BackendName = Field("transformers", description=f"the backend that runs the model: {known_backends()}")
    backend_settings: dict[str, Any] = Field(
        default_factory=dict, description="passed to the backend: dtype, max_model_len, batch_size, base_url, "
        "api_key_env, ... (the backend's settings, as the Teachers page lists them)"
    )
    ruleset: str = Field("default", description="the rule book the model was trained with (name or YAML file)")
    benchmarks: list[str] = Field(default_factory=lambda: ["ascl"], description="suite and benchmark names")
    custom: list[CustomBenchmark] = Field(default_factory=list)
    modes: list[Mode] = Field(
        default_factory=lambda: ["live"],
        description="live: the rule tool offered (ASCL); none: no rules; system: the rule book in the system prompt",
    )
    limit: int | None = Field(None, ge=1, description="the first N items of each benchmark")
    samples: int = Field(1, ge=1, description="answers per item: accuracy is avg@1 over them, pass@k counts any")
    temperature: float | None = Field(None, ge=0, description="default 0 with one sample, 0.6 with several")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(1024, ge=1, description="tokens per assistant turn")
    max_turns: int = Field(3, ge=1, description="assistant turns per conversation in live mode (tool calls + answer)")
    batch_size: int = Field(16, ge=1, description="conversations per tool-loop call (the progress bar's step)")
    seed: int = 0
    local: dict[str, str] = Field(default_factory=dict, description="benchmark name -> local file or folder")
    data_dir: str | None = Field(None, description="a folder holding <benchmark>.jsonl/.parquet/.csv copies")
    revisions: dict[str, str] = Field(default_factory=dict, description="benchmark name -> Hub revision (commit sha)")
    judge: JudgeConfig | None = Field(
        None, description="the judge config (the build's `judge:` section): with model_judge, a model judge labels "
                          "every safety and over-refusal answer too; default: the one an evaluated built dataset "
                          "recorded, else the rule-based classifier alone"
    )
    out: str = Field("eval_results", description="folder for results.json, results.md and records.jsonl")

    @field_validator("backend_settings")
    @classmethod
    def _typed(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Checked by the backend's settings model, as a teacher's settings are (an unknown, secret or bad setting
        names `backend_settings.<key>`); kept as written."""
        if "model" in v:
            raise ValueError("model is eval's own option: give it as --model (or `model:` in --config)")
        if (backend := info.data.get("backend")) is not None:
            check_settings(backend, v)
        return v

    @model_validator(mode="after")
    def _sampling(self) -> EvalSettings:
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("several samples per item (pass@k) need temperature > 0")
        if not self.benchmarks and not self.custom:
            raise ValueError("nothing to evaluate: give benchmarks (a suite or names) or a custom benchmark")
        self.local = {k: str(Path(v).expanduser()) for k, v in self.local.items()}
        return self

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.6
