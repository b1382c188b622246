"""`JudgeConfig`: how responses are judged. A leaf module (pydantic and the other leaves only), so the recipe contract
can hold it without importing the judge.

The model judge is a section of its own, one kind per backend (as the teacher):

    judge:
      model_judge: {backend: openai, model: Qwen/Qwen3-8B, api_key_env: OPENAI_API_KEY,
                    settings: {base_url: "http://10.0.0.1:8000/v1"}, format: rubric, mode: override}

The flat shape it had before (`model_judge: true`, `backend`, `backend_settings`, `model_judge_format`,
`model_judge_mode`, `rubric`, `max_tokens` beside the other judge fields) still loads, with a DeprecationWarning:
recipes and the `judge.json` of older build folders keep working, errors name the keys as written, and the recipe's
fingerprint hashes the judge in that flat shape whichever shape was written (`fingerprint_data`), so a recipe keeps
its hash.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError, field_validator, \
    model_validator
from pydantic_core import to_jsonable_python

from ascl_data.backends.configs import BackendModel, as_written, backend_union, sectioned
from ascl_data.backends.settings import OpenAIOptions, TransformersOptions, VLLMOptions

FormatName = Literal["rubric", "llama_guard_3", "wildguard", "qwen3guard"]
ModeName = Literal["override", "agree", "band"]
JUDGE_CONFIG_FILE = "judge.json"  # in a build folder: the JudgeConfig the build judged with


class _ModelJudge(BackendModel):
    """A model judge: a model, through any backend, that labels each answer beside the fast classifier."""

    role: ClassVar[str] = "model judge"
    section: ClassVar[str] = "judge.model_judge"

    format: FormatName = Field("rubric", description="rubric (a general LLM), llama_guard_3, wildguard or qwen3guard")
    mode: ModeName = Field(
        "override", description="override: the model's verdict replaces the classifier's; agree: both must agree; "
        "band: the model judge is asked only about answers in the uncertain band, and decides them"
    )
    rubric: str | None = Field(None, description="the rubric format's system prompt (default: DEFAULT_RUBRIC)")
    max_tokens: int = Field(256, ge=1)  # tokens the model judge may write

    @model_validator(mode="after")
    def _fits(self) -> _ModelJudge:
        if self.rubric is not None and self.format != "rubric":
            raise ValueError(f"rubric: only the rubric format takes a rubric, not {self.format}")
        if self.format == "llama_guard_3" and self.mode in ("agree", "band"):
            raise ValueError("mode: llama_guard_3 labels harm, not refusal, so it cannot agree or disagree with the "
                             "classifier, nor decide the uncertain band; use override (its unsafe flag rejects)")
        return self


class TransformersJudge(_ModelJudge):
    """`model_judge: {backend: transformers}`: the judge model runs in this process."""

    backend: Literal["transformers"]  # in process
    model: str | None = None  # a Hub id or a local folder
    settings: TransformersOptions = Field(default_factory=TransformersOptions)  # the transformers backend's settings


class OpenAIJudge(_ModelJudge):
    """`model_judge: {backend: openai}`: the judge model behind any OpenAI-compatible server."""

    backend: Literal["openai"]  # any OpenAI-compatible server
    model: str | None = None  # the model name the server serves (its /v1/models lists the names)
    settings: OpenAIOptions = Field(default_factory=OpenAIOptions)  # the openai backend's settings


class VLLMJudge(_ModelJudge):
    """`model_judge: {backend: vllm}`: the judge model in the in-process vLLM engine (GPU; extra `vllm`)."""

    backend: Literal["vllm"]  # in process, GPU
    model: str | None = None  # a Hub id or a local folder
    settings: VLLMOptions = Field(default_factory=VLLMOptions)  # the vllm backend's settings


MODEL_JUDGES: dict[str, type[_ModelJudge]] = {"transformers": TransformersJudge, "openai": OpenAIJudge,
                                               "vllm": VLLMJudge}
# The model judge's backend and its settings: one kind per backend, told apart by `backend` (which it must name)
ModelJudgeConfig = backend_union(MODEL_JUDGES, "judge")

# --------------------------------------------------------------------------- the flat shape of before

# the model judge's keys of the flat shape -> its field in the section
_FLAT = {"model_judge_format": "format", "model_judge_mode": "mode", "rubric": "rubric", "max_tokens": "max_tokens"}
_FLAT_KEYS = (*_FLAT, "backend", "backend_settings")
_FLAT_DEFAULTS: dict[str, Any] = {"model_judge": False, "model_judge_format": "rubric", "model_judge_mode": "override",
                                  "backend": None, "backend_settings": {}, "rubric": None, "max_tokens": 256}
_AS_WRITTEN = {new: old for old, new in _FLAT.items()} | {"model": "backend_settings.model",
                                                         "api_key_env": "backend_settings.api_key_env",
                                                         "settings": "backend_settings"}


def _flat(data: dict[str, Any]) -> bool:
    """A judge section in the flat shape: `model_judge` a bool, or a model judge key beside the judge's own."""
    return isinstance(data.get("model_judge"), bool) or any(key in data for key in _FLAT_KEYS)


# --------------------------------------------------------------------------- the judge


class JudgeConfig(BaseModel):
    """How responses are judged: the build's `judge:` recipe section, and the rule rewards and eval score by."""

    model_config = ConfigDict(extra="forbid")

    # ask a model judge as well as the fast classifier: its backend, model, settings, format and mode
    model_judge: ModelJudgeConfig | None = None
    # accept a safe completion (not only compliance) on borderline prompts
    allow_safe_complete_on_borderline: bool = False
    require_reference: bool = Field(True, description="reject reasoning prompts that have no reference answer")
    # [low, high]: an answer whose refusal probability (the fast classifier's) lies in it goes to a second judge
    # (the model judge, else uncertain_judge); without one it is `uncertain` (rejected, unpaid, counted apart)
    uncertain: tuple[float, float] | None = None
    # the second judge for the band when no model judge is configured: smollm2 (the shipped LoRA classifier on
    # CPU, a few answers per CPU-second; needs the embedded extra) or none (band answers are `uncertain`)
    uncertain_judge: Literal["smollm2", "none"] = "smollm2"

    # a flat section's model judge keys when `model_judge` was false: unused, hashed as they were written
    _unused: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _from_flat(cls, data: Any, handler: Any) -> JudgeConfig:
        """The flat shape of before, made a `model_judge` section; errors name the keys as written."""
        if not isinstance(data, dict) or not _flat(data):
            return handler(data)._fits("model_judge.mode")
        data = dict(data)
        if isinstance(data.get("model_judge"), (dict, BaseModel)):
            key = next(k for k in _FLAT_KEYS if k in data)
            raise ValueError(f"{key}: with model_judge as a section, write it inside it ({_FLAT.get(key, key)})")
        warnings.warn("judge: the flat model judge keys (model_judge: true, backend, backend_settings, "
                      "model_judge_format, ...) are deprecated; write model_judge as a section, "
                      "{backend: ..., model: ..., settings: {...}, format: ..., mode: ...}", DeprecationWarning,
                      stacklevel=2)
        flat = {key: data.pop(key) for key in _FLAT_KEYS if key in data}
        enabled = bool(data.pop("model_judge", False))
        section = {_FLAT[k]: v for k, v in flat.items() if k in _FLAT}
        settings = flat.get("backend_settings", {})
        if isinstance(settings, dict):
            section.update(sectioned(settings) if settings or enabled else {})
        else:
            section["settings"] = settings  # not a mapping: the section's check says so
        if flat.get("backend") is not None:
            section["backend"] = flat["backend"]
        unused: dict[str, Any] = {}
        if enabled:
            if "backend" not in section:
                raise ValueError("backend: model_judge is true but no judge backend is named")
            data["model_judge"] = section
        elif section:  # unused, but checked as before, and hashed as written
            try:
                if "backend" in section:
                    judge: _ModelJudge = TypeAdapter(ModelJudgeConfig).validate_python(section)
                else:
                    judge = _ModelJudge.model_validate({**section, "backend": ""})
            except ValidationError as exc:
                raise as_written(exc, _AS_WRITTEN, MODEL_JUDGES) from None
            unused = {old: getattr(judge, new) for old, new in _FLAT.items()}
            unused |= {"backend": flat.get("backend"), "backend_settings": to_jsonable_python(settings)}
        try:
            out = handler(data)
        except ValidationError as exc:
            raise as_written(exc, _AS_WRITTEN, MODEL_JUDGES, inside="model_judge") from None
        out._unused = unused
        return out._fits("model_judge_mode")

    def _fits(self, mode: str) -> JudgeConfig:
        """Settings that cannot work together fail when the config is read, before any teacher call (`mode`: the
        mode's key as written)."""
        if self.model_judge is not None and self.model_judge.mode == "band" and self.uncertain is None:
            raise ValueError(f"{mode}: band asks the model judge about answers in the uncertain band, but no band is "
                             "set (judge.uncertain: [low, high])")
        return self

    @field_validator("uncertain")
    @classmethod
    def _band(cls, band: tuple[float, float] | None) -> tuple[float, float] | None:
        if band is not None and not 0.0 <= band[0] <= band[1] <= 1.0:
            raise ValueError(f"the band [low, high] needs 0 <= low <= high <= 1, got [{band[0]:g}, {band[1]:g}]")
        return band

    # The model judge's settings where code reads them (the judge, eval): the section's, else the defaults.

    @property
    def model_judge_format(self) -> FormatName:
        return self.model_judge.format if self.model_judge is not None else "rubric"

    @property
    def model_judge_mode(self) -> ModeName:
        return self.model_judge.mode if self.model_judge is not None else "override"

    @property
    def rubric(self) -> str | None:
        return self.model_judge.rubric if self.model_judge is not None else None

    @property
    def max_tokens(self) -> int:
        return self.model_judge.max_tokens if self.model_judge is not None else 256

    @property
    def backend(self) -> str | None:
        return self.model_judge.backend if self.model_judge is not None else None

    @property
    def backend_settings(self) -> dict[str, Any]:
        """The model judge's backend settings as one flat dict, as written (the model and the key's variable
        beside the settings): what `make_backend(config.backend, **config.backend_settings)` takes."""
        return self.model_judge.flat_settings() if self.model_judge is not None else {}

    def fingerprint_data(self) -> dict[str, Any]:
        """The judge as a recipe's fingerprint hashes it: the flat shape, the settings as written, and the fields
        added since (`uncertain`, `uncertain_judge`) only where they are not at their defaults, so that a recipe
        keeps the hash it had whichever shape it writes its judge in."""
        data = self.model_dump(mode="json", exclude={"model_judge"})
        flat = dict(_FLAT_DEFAULTS)
        if (judge := self.model_judge) is not None:
            flat.update({old: getattr(judge, new) for old, new in _FLAT.items()})
            flat.update(model_judge=True, backend=judge.backend,
                        backend_settings=to_jsonable_python(judge.flat_settings()))
        flat.update(self._unused)
        data.update(flat)
        for key, default in (("uncertain", None), ("uncertain_judge", "smollm2")):
            if data.get(key, default) == default:
                data.pop(key, None)
        return data


def with_options(judge: dict[str, Any] | None, flat: dict[str, Any]) -> dict[str, Any]:
    """A `judge:` section (as written, or dumped) with a model judge's options added, given in the flat shape
    (`ascl-data eval --judge-backend/--judge-format/--judge-mode/--judge-setting`): into its `model_judge` section
    where it has one (a `model` or `api_key_env` setting as the section's own field), else as the flat keys."""
    judge, flat = dict(judge or {}), dict(flat)
    settings = flat.pop("backend_settings", {})
    section = judge.get("model_judge")
    if _flat(judge):  # a config written in the flat shape of before: the options join it as flat keys
        settings = {**judge.get("backend_settings", {}), **settings}
        return {**judge, **flat, "model_judge": True, **({"backend_settings": settings} if settings else {})}
    section = {**(section if isinstance(section, dict) else {}),
               **{_FLAT.get(key, key): value for key, value in flat.items()}}
    own = sectioned(settings)
    section["settings"] = {**(section.get("settings") or {}), **own.pop("settings")}
    if not section["settings"]:
        del section["settings"]
    return {**judge, "model_judge": {**section, **own}}


__all__ = ["JUDGE_CONFIG_FILE", "MODEL_JUDGES", "FormatName", "JudgeConfig", "ModelJudgeConfig", "OpenAIJudge",
           "TransformersJudge", "VLLMJudge", "with_options"]
