"""`JudgeConfig`: how responses are judged. A leaf module (pydantic only), so the recipe contract can hold it
without importing the judge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ascl_data.backends.names import BACKENDS
from ascl_data.backends.settings import check_settings

FormatName = Literal["rubric", "llama_guard_3", "wildguard", "qwen3guard"]
JUDGE_CONFIG_FILE = "judge.json"  # in a build folder: the JudgeConfig the build judged with


class JudgeConfig(BaseModel):
    """How responses are judged: the build's `judge:` recipe section, and the rule rewards and eval score by."""

    model_config = ConfigDict(extra="forbid")

    model_judge: bool = False  # ask a model judge as well as the fast classifier
    model_judge_format: FormatName = Field(
        "rubric", description="rubric (a general LLM), llama_guard_3, wildguard or qwen3guard"
    )
    model_judge_mode: Literal["override", "agree", "band"] = Field(
        "override", description="override: the model's verdict replaces the classifier's; agree: both must agree; "
        "band: the model judge is asked only about answers in the uncertain band, and decides them"
    )
    backend: str | None = Field(None, description="backend name for the model judge (make_backend)")
    # settings for the judge backend: the model and the backend's settings (the Teachers page lists them)
    backend_settings: dict[str, Any] = Field(default_factory=dict)
    rubric: str | None = Field(None, description="the rubric format's system prompt (default: DEFAULT_RUBRIC)")
    max_tokens: int = Field(256, ge=1)  # tokens the model judge may write
    # accept a safe completion (not only compliance) on borderline prompts
    allow_safe_complete_on_borderline: bool = False
    require_reference: bool = Field(True, description="reject reasoning prompts that have no reference answer")
    # [low, high]: an answer whose refusal probability (the fast classifier's) lies in it goes to a second judge
    # (the model judge, else uncertain_judge); without one it is `uncertain` (rejected, unpaid, counted apart)
    uncertain: tuple[float, float] | None = None
    # the second judge for the band when no model judge is configured: smollm2 (the shipped LoRA classifier on
    # CPU, a few answers per CPU-second; needs the embedded extra) or none (band answers are `uncertain`)
    uncertain_judge: Literal["smollm2", "none"] = "smollm2"

    @field_validator("uncertain")
    @classmethod
    def _band(cls, band: tuple[float, float] | None) -> tuple[float, float] | None:
        if band is not None and not 0.0 <= band[0] <= band[1] <= 1.0:
            raise ValueError(f"the band [low, high] needs 0 <= low <= high <= 1, got [{band[0]:g}, {band[1]:g}]")
        return band

    @field_validator("backend_settings")
    @classmethod
    def _typed(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Checked by the backend's settings model (an unknown or bad setting names `backend_settings.<key>`);
        kept as written, so that judge.json and the recipe's fingerprint stay as they were."""
        if (backend := info.data.get("backend")) in BACKENDS:
            check_settings(backend, v)
        return v

    @model_validator(mode="after")
    def _fits(self) -> JudgeConfig:
        """Settings that cannot work together fail when the config is read, before any teacher call."""
        if self.model_judge and not self.backend:
            raise ValueError("backend: model_judge is true but no judge backend is named")
        if self.backend is not None and self.backend not in BACKENDS:
            raise ValueError(f"backend: unknown backend {self.backend!r}; known: {sorted(BACKENDS)}")
        if self.rubric is not None and self.model_judge_format != "rubric":
            raise ValueError(f"rubric: only the rubric format takes a rubric, not {self.model_judge_format}")
        if self.model_judge_mode == "band" and self.uncertain is None:
            raise ValueError("model_judge_mode: band asks the model judge about answers in the uncertain band, but "
                             "no band is set (judge.uncertain: [low, high])")
        if self.model_judge_format == "llama_guard_3" and self.model_judge_mode in ("agree", "band"):
            raise ValueError("model_judge_mode: llama_guard_3 labels harm, not refusal, so it cannot agree or "
                             "disagree with the classifier, nor decide the uncertain band; use override (its unsafe "
                             "flag rejects)")
        return self
