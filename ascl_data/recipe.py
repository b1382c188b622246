"""Build recipes: one YAML file that says everything a build needs, validated before any teacher call.

A recipe names its sources and their mix, the generators, the teacher backend and its settings, the rule book,
deduplication, decontamination and judge settings, split sizes, the output folder, card metadata and a seed.
Errors name the file, the line and the field (through `ascl_data.errors.load_yaml_model`).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (Discriminator, Field, PrivateAttr, Tag, TypeAdapter, ValidationError, field_validator,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError, to_jsonable_python

from ascl_data.backends.base import SamplingParams
from ascl_data.backends.consult_policy import ConsultPolicy
from ascl_data.backends.configs import BackendModel, as_written, backend_union, sectioned
from ascl_data.backends.settings import OpenAIOptions, TransformersOptions, VLLMOptions
from ascl_data.errors import load_yaml_model
from ascl_data.judge.config import JudgeConfig
from ascl_data.schemas import KINDS, Kind, StrictModel
from ascl_data.sources.adapters import ADAPTERS

# --------------------------------------------------------------------------- sources


class ColumnMap(StrictModel):
    """Which source column holds what. `prompt` (one user turn) or `messages` (a chat list) must be given
    unless an adapter provides them."""

    prompt: str | None = None  # column with the user prompt (one turn)
    messages: str | None = None  # column with a chat list (multi-turn context)
    system: str | None = None  # column with a system prompt to keep
    kind: str | None = None  # column with the prompt kind (mapped by `kind_map`)
    category: str | None = None  # column with the rule-book category
    reference: str | None = None  # column with the reference answer (reasoning prompts)


FilterOp = Literal["eq", "ne", "in", "not_in", "contains", "not_contains", "regex", "min_length", "max_length"]


class Filter(StrictModel):
    """Keep a row only if `column <op> value` holds (applied to raw rows, before normalisation)."""

    column: str  # raw source column to test
    op: FilterOp = "eq"  # comparison: eq, ne, in, not_in, contains, not_contains, regex, min_length, max_length
    value: Any  # value to compare with (a list for in/not_in, an integer for the length ops)

    @model_validator(mode="after")
    def _value_fits(self) -> Filter:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value, got {type(self.value).__name__}")
        if self.op in ("min_length", "max_length") and (not isinstance(self.value, int) or self.value < 0):
            raise ValueError(f"op {self.op!r} needs a non-negative integer value")
        if self.op == "regex":
            try:
                re.compile(str(self.value))
            except re.error as exc:
                raise ValueError(f"value is not a valid regular expression: {exc}") from None
        return self


class JailbreakWrap(StrictModel):
    """Wrap a fraction of this source's harmful prompts in jailbreak templates (they become kind `jailbreak`)."""

    # jailbreak template styles to draw from (`ascl_data.sources.jailbreak`)
    styles: list[str] = Field(default_factory=lambda: ["roleplay"], min_length=1)
    fraction: float = Field(1.0, ge=0.0, le=1.0)  # share of harmful prompts wrapped


class SourceSpec(StrictModel):
    """One prompt source: a Hub dataset (`dataset`) or a local CSV/JSONL/parquet file (`path`)."""

    name: str | None = None  # name in stats and the card (default: the dataset id or file stem)
    dataset: str | None = None  # Hub id, org/name
    path: str | None = None  # local file or glob
    format: Literal["jsonl", "csv", "parquet"] | None = None  # from the suffix when absent
    adapter: str | None = None  # a ready adapter for a known dataset (see ascl_data.sources.adapters)
    config: str | None = None  # Hub dataset config name
    split: str = "train"  # source split to read
    revision: str | None = None  # Hub commit, branch or tag to pin
    streaming: bool = True  # stream Hub rows instead of downloading the split
    columns: ColumnMap = Field(default_factory=ColumnMap)  # which column holds what
    kind: Kind | None = None  # one kind for every row
    kind_map: dict[str, Kind] = Field(default_factory=dict)  # kind column value -> kind
    category: str | None = None  # one category for every row
    filters: list[Filter] = Field(default_factory=list)  # keep a row only if every filter holds
    sample: int | None = Field(None, ge=1)  # at most this many rows (after filters)
    shuffle: bool = False  # shuffle (seeded) before sampling; streaming Hub sources use a buffer
    shuffle_buffer: int = Field(10_000, ge=1)  # buffer size for shuffling a streamed source
    weight: float = Field(1.0, gt=0.0)  # share in the interleaved mix
    license: str | None = None  # for the dataset card
    jailbreak: JailbreakWrap | None = None  # wrap some harmful prompts in jailbreak templates
    load_kwargs: dict[str, Any] = Field(default_factory=dict)  # extra `datasets.load_dataset` arguments

    @model_validator(mode="after")
    def _one_origin(self) -> SourceSpec:
        if self.adapter is not None and not self.dataset and not self.path:
            if self.adapter in ADAPTERS:
                self.dataset = ADAPTERS[self.adapter].dataset
        if bool(self.dataset) == bool(self.path):
            raise ValueError("give exactly one of `dataset` (a Hub dataset id) or `path` (a local file)")
        if self.path and self.format is None:
            suffix = Path(self.path).suffix.lower()
            fmt = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(suffix)
            if fmt is None:
                raise ValueError(f"cannot tell the format of {self.path!r} from its suffix; set `format`")
            self.format = fmt  # type: ignore[assignment]
        if self.adapter is not None:
            if self.adapter not in ADAPTERS:
                raise ValueError(f"unknown adapter {self.adapter!r}; known: {sorted(ADAPTERS)}")
        elif not (self.columns.prompt or self.columns.messages):
            # local files default to a `prompt` column; Hub sets must say which column holds the prompt
            if self.path:
                self.columns.prompt = "prompt"
                # local files: the package's own column names unless the recipe maps others
                self.columns.category = self.columns.category or "category"
                self.columns.reference = self.columns.reference or "reference"
                self.columns.system = self.columns.system or "system"
            else:
                raise ValueError("set `columns.prompt` or `columns.messages` (or use an `adapter`)")
        if self.kind is None and not self.columns.kind and self.adapter is None:
            if self.path:
                self.columns.kind = "kind"
            else:
                raise ValueError("set `kind` (one kind for all rows) or `columns.kind` (or use an `adapter`)")
        if self.name is None:
            self.name = self.dataset or Path(self.path or "").stem
        return self

    @field_validator("dataset")
    @classmethod
    def _hub_id(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[\w.-]+(/[\w.-]+)?$", v) and not v.startswith(("/", ".", "~")):
            raise ValueError(f"{v!r} is neither a Hub dataset id (org/name) nor a local dataset folder")
        return v


class MixConfig(StrictModel):
    """How sources combine: `interleave` draws from them by weight (seeded); `concat` reads them in order."""

    strategy: Literal["interleave", "concat"] = "interleave"  # interleave (by weight, seeded) or concat (in order)
    max_prompts: int | None = Field(None, ge=1)  # stop after this many prompts (before dedup)


class DedupConfig(StrictModel):
    """Exact duplicates by normalised-text hash; near duplicates by word-shingle Jaccard, verified for the candidates MinHash LSH proposes."""

    exact: bool = True  # drop exact duplicates (normalised text)
    near: bool = True  # drop near duplicates (MinHash LSH)
    threshold: float = Field(0.8, gt=0.0, le=1.0)  # estimated Jaccard similarity that counts as a duplicate
    num_perm: int = Field(64, ge=8, le=512)  # MinHash permutations (more: finer estimate, slower)
    shingle: int = Field(3, ge=1, le=10)  # words per shingle


class DecontamConfig(StrictModel):
    """Drop prompts that share long n-grams with named evaluation sets (local files or Hub datasets)."""

    # sources (benchmarks) whose prompts must not appear in the build
    against: list[SourceSpec] = Field(default_factory=list)
    ngram: int = Field(8, ge=3, le=50)  # words per n-gram compared
    min_overlap: float = Field(0.0, ge=0.0, le=1.0)  # fraction of the prompt's n-grams; 0 means any shared n-gram


class SplitTarget(StrictModel):
    """`sft: {accepted: N}`: draw prompts until N of them are accepted traces, or until the sources run dry."""

    accepted: int = Field(ge=1)  # accepted sft traces to reach


class SplitConfig(StrictModel):
    """How deduplicated prompts are divided: fractions (summing to 1), counts of prompts per split (the stream stops
    when every split is full), or a target of accepted traces for `sft` (`sft: {accepted: 500}`, with `rl` and
    `eval` as counts). `sft` prompts go to the teacher; `rl` and `eval` keep the prompt with kind and reference."""

    # prompts sent to the teacher: a fraction, a count, or `{accepted: N}`
    sft: Annotated[Annotated[float | int, Tag("size")] | Annotated[SplitTarget, Tag("target")],
                   Discriminator(lambda v: "target" if isinstance(v, (dict, SplitTarget)) else "size")] = 1.0
    rl: float | int = 0  # prompts kept for RL (fraction or count)
    eval: float | int = 0  # prompts kept for evaluation (fraction or count)

    @model_validator(mode="after")
    def _consistent(self) -> SplitConfig:
        if self.target is not None:
            for name in ("rl", "eval"):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"splits.{name}: with a target for sft (`sft: {{accepted: N}}`), give {name} as "
                                     f"a count of prompts (0 or more), got {value!r}")
            return self
        values = [float(v) for v in self.sizes().values()]
        if any(v < 0 for v in values):
            raise ValueError("split sizes must not be negative")
        if self.by_count:
            if sum(values) == 0:
                raise ValueError("all split sizes are 0")
        elif any(v > 1 for v in values):
            raise ValueError(
                "mix of counts and fractions: give all split sizes as counts (1000) or all as fractions (0.8)"
            )
        elif abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, they sum to {sum(values):g}")
        return self

    @property
    def target(self) -> int | None:
        """The number of accepted `sft` traces asked for (`sft: {accepted: N}`); None when sft is a size."""
        return self.sft.accepted if isinstance(self.sft, SplitTarget) else None

    @property
    def by_count(self) -> bool:
        """Counts when every size is an integer (`sft: 100`) or sft has a target; fractions are written with a point
        (`sft: 0.8`)."""
        values = (self.sft, self.rl, self.eval)
        return all(isinstance(v, (int, SplitTarget)) and not isinstance(v, bool) for v in values)

    def sizes(self) -> dict[str, float]:
        """Each split's size; a target counts as its number of accepted traces (the least the sft split draws)."""
        sft = self.target if self.target is not None else self.sft
        return {"sft": float(sft), "rl": float(self.rl), "eval": float(self.eval)}  # type: ignore[arg-type]


class GeneratorSpec(StrictModel):
    """A registered generator by name, its share of the SFT prompts, and its options. `consult` sets the
    consultation policy per prompt kind (`auto`, the default: the teacher decides; `required`: its first turn calls
    the rule tool; `forbidden`: no tool offered); `attempts` is how many sampled answers a prompt may get until
    the judge accepts one."""

    name: str = "adaptive"  # registered generator: adaptive, context_distillation or a plug-in
    weight: float = Field(1.0, gt=0.0)  # share of the sft prompts
    max_turns: int = Field(4, ge=1, le=32)  # assistant turns allowed per conversation
    max_tool_calls: int = Field(3, ge=0, le=32)  # rule-tool calls allowed per conversation
    # consultation policy per prompt kind: auto, required or forbidden
    consult: dict[Kind, ConsultPolicy] = Field(default_factory=dict)
    attempts: int = Field(1, ge=1, le=64)  # sampled answers per prompt until the judge accepts one
    options: dict[str, Any] = Field(default_factory=dict)  # generator-specific options


class Prices(StrictModel):
    """The teacher's price per million tokens, for the build summary's cost."""

    prompt: float = Field(ge=0.0)  # price per million prompt tokens
    completion: float = Field(ge=0.0)  # price per million completion tokens

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


class _Teacher(BackendModel):
    """What every teacher has, whatever its backend (`backend`, `model`, `settings` and `api_key_env`: see
    `ascl_data.backends.configs.BackendModel`). Secrets are never written here: name the environment variable that
    holds the key (`api_key_env`) and the backend reads it at run time."""

    sampling: SamplingParams = Field(default_factory=SamplingParams)  # how each request samples
    cache_dir: str | None = None  # default: <output>/.ascl/cache
    # conversations with the teacher at once, each with at most one request in flight; default: 4 x the backend's
    # concurrency (openai: settings.max_concurrency; in-process engines: 2 x settings.batch_size), which still caps
    # the requests sent at once, so no request slot idles while a conversation is between turns. No effect on data.
    max_in_flight: int | None = None
    batch_size: int = 8  # deprecated and ignored (`load_recipe` says so); kept so old recipes load and hash alike
    prices: Prices | None = None  # per million tokens; the summary then shows the build's cost

    @model_validator(mode="after")
    def _consistent(self) -> _Teacher:
        if self.prices is not None and self.model is None:
            raise ValueError("teacher.prices needs teacher.model: prices are per model (the embedded teacher is free)")
        if self.sampling.consult != "auto":
            raise ValueError("teacher.sampling.consult: set the consultation policy per prompt kind in "
                             "generators[i].consult instead")
        return self

    @field_validator("max_in_flight")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be at least 1 (teacher requests in flight at once), got {v}")
        return v


class TransformersTeacher(_Teacher):
    """`backend: transformers` (the default): the model runs in this process; with no `model`, the embedded
    SmolLM2."""

    backend: Literal["transformers"] = "transformers"  # in process, the embedded default
    model: str | None = None  # a Hub id or a local folder; None: the embedded SmolLM2
    settings: TransformersOptions = Field(default_factory=TransformersOptions)  # the transformers backend's settings


class OpenAITeacher(_Teacher):
    """`backend: openai`: any OpenAI-compatible server (vLLM, SGLang, a hosted API)."""

    backend: Literal["openai"]  # any OpenAI-compatible server
    model: str | None = None  # the model name the server serves (its /v1/models lists the names)
    settings: OpenAIOptions = Field(default_factory=OpenAIOptions)  # the openai backend's settings


class VLLMTeacher(_Teacher):
    """`backend: vllm`: the in-process vLLM engine (GPU; extra `vllm`)."""

    backend: Literal["vllm"]  # in process, GPU
    model: str | None = None  # a Hub id or a local folder
    settings: VLLMOptions = Field(default_factory=VLLMOptions)  # the vllm backend's settings


TEACHERS: dict[str, type[_Teacher]] = {"transformers": TransformersTeacher, "openai": OpenAITeacher,
                                       "vllm": VLLMTeacher}

# The teacher backend and its settings: one kind of teacher per backend, told apart by `backend` (transformers when
# it names none)
TeacherConfig = backend_union(TEACHERS, "teacher", default="transformers")


class OutputConfig(StrictModel):
    dir: str  # build folder, relative to the recipe file
    shard_size: int = Field(1000, ge=1)  # prompts per pipeline chunk (one shard per split per chunk at most)
    think_inline: bool = False  # render reasoning_content inline as <think>...</think> in the sft split
    plots: bool = True  # write PNG plots of the statistics into stats/


GATED_FIELD_TYPES = ("text", "checkbox", "date_picker", "country", "select")


class CardConfig(StrictModel):
    """Metadata for the generated dataset card (Hub YAML header and text). Licence, languages, task categories and
    task ids are checked against the values the Hub accepts by `build --check` (`ascl_data.pipeline.check`). The
    `extra_gated_*` fields are the Hub's own names for a gated dataset's access form; they take effect once access
    requests are enabled in the repository's settings."""

    pretty_name: str | None = None  # title on the Hub page
    license: str = "apache-2.0"  # dataset licence id (Hub licence list)
    license_name: str | None = None  # with license: other, the licence's id (the Hub asks for one)
    license_link: str | None = None  # with license: other, "LICENSE" (a file in the repository) or a URL
    language: list[str] = Field(default_factory=lambda: ["en"])  # language codes
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"])  # Hub task categories
    task_ids: list[str] = Field(default_factory=list)  # Hub task ids
    tags: list[str] = Field(default_factory=list)  # Hub tags
    description: str = ""  # what the dataset is, in the card
    intended_use: str = ""  # intended use, in the card
    limitations: str = ""  # known limitations, in the card
    citation: str = ""  # BibTeX to cite the dataset
    extra_gated_prompt: str | None = None  # gated access: text shown above the form
    extra_gated_fields: dict[str, str | dict[str, Any]] | None = None  # gated access: form fields (name -> type)
    extra_gated_heading: str | None = None  # gated access: form heading
    extra_gated_description: str | None = None  # gated access: form description
    extra_gated_button_content: str | None = None  # gated access: button text
    extra_gated_eu_disallowed: bool | None = None  # gated access: refuse requests from the EU

    @field_validator("extra_gated_fields")
    @classmethod
    def _gated_fields(cls, v: dict[str, str | dict[str, Any]] | None) -> dict[str, str | dict[str, Any]] | None:
        """The Hub's field types: a type name, or `{type: select, options: [...]}` for a drop-down."""
        for name, spec in (v or {}).items():
            kind = spec if isinstance(spec, str) else spec.get("type")
            if kind not in GATED_FIELD_TYPES:
                raise ValueError(f"field {name!r}: type {kind!r} is not one of {list(GATED_FIELD_TYPES)}")
            if kind == "select" and (isinstance(spec, str) or not spec.get("options")):
                raise ValueError(f"field {name!r}: a select needs `options` (a list of choices)")
        return v

    def hub_metadata(self) -> dict[str, Any]:
        """The card fields that go into the YAML header as they are (licence details and the gated-access form)."""
        keys = ("license_name", "license_link", *(k for k in type(self).model_fields if k.startswith("extra_gated_")))
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


FilterAction = Literal["off", "warn", "reject"]


class _Rater(BackendModel):
    """The optional model rater: a model, through any backend (as the teacher and the model judge), scores each
    accepted trace 1-5 for helpfulness and for following the retrieved rules (what the cheap fields cannot see). On
    where it is written, off where it is not: it costs a model call per trace."""

    role: ClassVar[str] = "rater"
    section: ClassVar[str] = "quality.rater"

    prompt: str | None = None  # the rater's system prompt (default: `ascl_data.pipeline.quality.RATER_PROMPT`)
    max_tokens: int = Field(256, ge=1)  # tokens the rater may write

    def fingerprint_data(self) -> dict[str, Any]:
        """The rater as a recipe's fingerprint hashes it: the shape of before (`enabled`, `backend`, and
        `backend_settings` as written, the model and the key's variable among them), so a recipe keeps its hash
        whichever shape it writes its rater in."""
        return {"enabled": True, "backend": self.backend, "prompt": self.prompt, "max_tokens": self.max_tokens,
                "backend_settings": to_jsonable_python(self.flat_settings())}


class TransformersRater(_Rater):
    """`rater: {backend: transformers}`: the rater model runs in this process."""

    backend: Literal["transformers"]  # in process
    model: str | None = None  # a Hub id or a local folder
    settings: TransformersOptions = Field(default_factory=TransformersOptions)  # the transformers backend's settings


class OpenAIRater(_Rater):
    """`rater: {backend: openai}`: the rater model behind any OpenAI-compatible server."""

    backend: Literal["openai"]  # any OpenAI-compatible server
    model: str | None = None  # the model name the server serves (its /v1/models lists the names)
    settings: OpenAIOptions = Field(default_factory=OpenAIOptions)  # the openai backend's settings


class VLLMRater(_Rater):
    """`rater: {backend: vllm}`: the rater model in the in-process vLLM engine (GPU; extra `vllm`)."""

    backend: Literal["vllm"]  # in process, GPU
    model: str | None = None  # a Hub id or a local folder
    settings: VLLMOptions = Field(default_factory=VLLMOptions)  # the vllm backend's settings


RATERS: dict[str, type[_Rater]] = {"transformers": TransformersRater, "openai": OpenAIRater, "vllm": VLLMRater}
# The rater's backend and its settings: one kind per backend, told apart by `backend` (which it must name)
RaterConfig = backend_union(RATERS, "rater")

# The rater's shape of before (`rater: {enabled: true, backend: openai, backend_settings: {model: M, ...}}`): only it
# has these keys; only a section has `_RATER_OWN`. It still loads, with a DeprecationWarning (`_rater_section`).
_RATER_FLAT_KEYS = ("enabled", "backend_settings")
_RATER_OWN = ("model", "settings", "api_key_env")
_RATER_AS_WRITTEN = {"model": "backend_settings.model", "api_key_env": "backend_settings.api_key_env",
                     "settings": "backend_settings"}  # a section's field -> its key in the shape of before
_RATER_OFF: dict[str, Any] = {"enabled": False, "backend": None, "backend_settings": {}, "prompt": None,
                              "max_tokens": 256}  # the rater off, as a fingerprint hashes it


def _rater_error(loc: tuple[str, ...], message: str, value: Any, kind: str = "value_error") -> ValidationError:
    return ValidationError.from_exception_data("QualityConfig", [
        InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)])


def _rater_section(rater: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A rater in the shape of before as (the section, or None when it is off; the keys of an off rater, checked as
    before and as a fingerprint hashes them). Errors name the keys as written, under `rater`."""
    if mixed := [key for key in _RATER_OWN if key in rater]:
        old = next(key for key in _RATER_FLAT_KEYS if key in rater)
        raise _rater_error(("rater",), f"{old}: with the rater as a section ({', '.join(_RATER_OWN)}), leave {old} "
                           f"out: a rater section is on where it is written (it names {', '.join(mixed)})", rater)
    try:
        enabled = TypeAdapter(bool).validate_python(rater.get("enabled", False))
    except ValidationError as exc:
        (err,) = exc.errors(include_url=False)
        raise _rater_error(("rater", "enabled"), err["msg"], err["input"], err["type"]) from None
    section = {key: value for key, value in rater.items() if key not in _RATER_FLAT_KEYS}
    settings = rater.get("backend_settings", {})
    if isinstance(settings, dict):
        section.update(sectioned(settings))
    else:
        section["settings"] = settings  # not a mapping: the section's check says so
    if enabled:
        if section.get("backend") is None:
            raise _rater_error(("rater",), "backend: the rater is enabled but no backend is named", rater)
        return section, {}
    try:  # off: checked as before (a named backend's settings, secrets, the prompt's fields), hashed as written
        if section.get("backend") is not None:
            off: _Rater = TypeAdapter(RaterConfig).validate_python(section)
        else:
            off = _Rater.model_validate({**section, "backend": ""})
    except ValidationError as exc:
        raise as_written(exc, _RATER_AS_WRITTEN, RATERS, at=("rater",)) from None
    return None, {**_RATER_OFF, "backend": section.get("backend"), "backend_settings": to_jsonable_python(settings),
                  "prompt": off.prompt, "max_tokens": off.max_tokens}


class QualityConfig(StrictModel):
    """Per-trace quality filters (`ascl_data.pipeline.quality`). Each filter is `off` (not checked), `warn` (the
    trace is kept and its reason goes into `quality.flags`, counted in stats and the card) or `reject` (the trace
    becomes a rejection at stage `quality` with that reason, and the prompt gets its next attempt). Warn or off by
    default: a strong teacher needs no filter, and the fields are stored either way."""

    off_category_retrieval: FilterAction = "warn"  # no retrieved rule (within max_fit_rank) in the prompt's category
    off_topic_query: FilterAction = "warn"  # query_fit < min_query_fit
    hallucinated_citation: FilterAction = "warn"  # the answer names a rule not retrieved, or not in the rule book
    repeats_tool_response: FilterAction = "warn"  # tool_echo >= max_tool_echo
    answer_length: FilterAction = "off"  # reasons answer_too_short / answer_too_long
    low_rating: FilterAction = "warn"  # a rater score < min_rating (only with the rater on)
    max_fit_rank: int | None = Field(None, ge=1)  # the first in-category rule must rank this high (None: any rank)
    min_query_fit: float = Field(0.3, ge=0.0, le=1.0)  # off_topic_query below this share of the query's rules
    max_tool_echo: float = Field(0.5, gt=0.0, le=1.0)  # repeats_tool_response at this share of copied 8-grams
    min_answer_chars: int = Field(1, ge=0)  # answer_too_short below this many characters
    max_answer_chars: int | None = Field(None, ge=1)  # answer_too_long above this many (None: no bound)
    min_rating: int = Field(3, ge=1, le=5)  # low_rating below this rater score
    # the optional model rater: its backend, model, settings, prompt and max_tokens (on where it is written)
    rater: RaterConfig | None = None

    # an off rater's keys in the shape of before (`enabled: false` beside a backend): unused, hashed as written
    _unused_rater: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _rater_of_before(cls, data: Any, handler: Any) -> QualityConfig:
        """The rater's shape of before (`enabled`, `backend`, `backend_settings`), made a section; errors name the
        keys as written."""
        rater = data.get("rater") if isinstance(data, dict) else None
        if not (isinstance(rater, dict) and any(key in rater for key in _RATER_FLAT_KEYS)):
            return handler(data)
        warnings.warn("quality.rater: the keys enabled and backend_settings are deprecated; write the rater as a "
                      "section, {backend: ..., model: ..., settings: {...}, prompt: ...}, which is on where it is "
                      "written (no rater, or rater: null, is off)", DeprecationWarning, stacklevel=2)
        errors: list[ValidationError] = []
        try:
            section, unused = _rater_section(rater)
        except ValidationError as exc:  # said with the other fields' errors, all at once
            errors.append(exc)
            section, unused = None, {}
        try:
            out = handler({**data, "rater": section})
        except ValidationError as exc:
            errors.append(as_written(exc, _RATER_AS_WRITTEN, RATERS, inside="rater", at=("rater",)))
        if errors:
            raise ValidationError.from_exception_data("QualityConfig", [
                InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"])
                for exc in errors for e in exc.errors(include_url=False)])
        out._unused_rater = unused
        return out

    def fingerprint_data(self) -> dict[str, Any]:
        """The section as a recipe's fingerprint hashes it: the rater in its shape of before whichever shape was
        written (`_Rater.fingerprint_data`), so that a recipe keeps its hash."""
        data = self.model_dump(mode="json", exclude={"rater"})
        data["rater"] = self.rater.fingerprint_data() if self.rater is not None else self._unused_rater or _RATER_OFF
        return data

    @model_validator(mode="after")
    def _bounds(self) -> QualityConfig:
        if self.max_answer_chars is not None and self.max_answer_chars < self.min_answer_chars:
            raise ValueError(f"max_answer_chars ({self.max_answer_chars}) is below min_answer_chars "
                             f"({self.min_answer_chars}): every answer would be rejected")
        return self


class HubConfig(StrictModel):
    """Where `--push-to-hub` sends the dataset when the recipe names it."""

    repo_id: str | None = None  # Hub dataset repository (org/name) for `--push-to-hub` without an argument
    private: bool = True  # create the repository private
    revision: str | None = None  # branch to push to
    tag: str | None = None  # tag to create on the pushed commit


class Recipe(StrictModel):
    """Everything one build needs."""

    name: str  # the dataset's name (card, stats)
    seed: int = 0  # seed for mixing, splitting, sampling and example draws
    sources: list[SourceSpec] = Field(min_length=1)  # prompt sources
    mix: MixConfig = Field(default_factory=MixConfig)  # how sources combine
    dedup: DedupConfig = Field(default_factory=DedupConfig)  # deduplication
    decontamination: DecontamConfig = Field(default_factory=DecontamConfig)  # drop prompts that overlap benchmarks
    splits: SplitConfig = Field(default_factory=SplitConfig)  # split sizes
    # generators and their share
    generators: list[GeneratorSpec] = Field(default_factory=lambda: [GeneratorSpec()], min_length=1)
    teacher: TeacherConfig = Field(default_factory=TransformersTeacher)  # the teacher model
    ruleset: str = "default"  # rule book: a shipped name or a YAML path
    judge: JudgeConfig = Field(default_factory=JudgeConfig)  # how answers are judged
    quality: QualityConfig = Field(default_factory=QualityConfig)  # per-trace quality checks and filters
    output: OutputConfig  # where the build is written
    card: CardConfig = Field(default_factory=CardConfig)  # dataset card metadata
    hub: HubConfig = Field(default_factory=HubConfig)  # where to push

    @model_validator(mode="after")
    def _unique_names(self) -> Recipe:
        for i, g in enumerate(self.generators):
            if g.attempts > 1 and self.teacher.sampling.temperature == 0:
                raise ValueError(f"generators[{i}].attempts: {g.attempts} attempts need sampling "
                                 "(teacher.sampling.temperature > 0); greedy decoding gives the same answer each time")
        seen: set[str] = set()
        for i, s in enumerate(self.sources):
            if s.name in seen:
                raise ValueError(f"sources[{i}]: duplicate source name {s.name!r}; give each source a distinct `name`")
            seen.add(s.name or "")
        return self

    def fingerprint(self) -> str:
        """A hash of the recipe's content (not its file path): it goes into the card and the build state."""
        # how many requests are in flight, or prices, change no answer (each depends on its request alone), so a build may
        # resume with another setting
        exclude = {"output": True, "hub": True,
                   "teacher": {"max_in_flight": True, "prices": True, "sampling": {"consult"}}}
        data = self.model_dump(mode="json", exclude=exclude)
        # the teacher's settings as the user wrote them (`base_url: URL` stays so), not with every default filled in:
        # an unchanged recipe keeps its hash when the settings model gains a field
        data["teacher"]["settings"] = to_jsonable_python(self.teacher.settings.given())
        for g in data["generators"]:  # at their defaults, fields added later leave an older build's hash as it was
            if not g["consult"]:
                del g["consult"]
            if g["attempts"] == 1:
                del g["attempts"]
        data["quality"] = self.quality.fingerprint_data()  # the rater in its shape of before, whichever was written
        if data["quality"] == QualityConfig().fingerprint_data():
            del data["quality"]  # at its defaults, a build made before the quality section keeps its hash
        data["judge"] = self.judge.fingerprint_data()  # the flat shape of before, whichever shape was written
        card = data["card"]
        for key in ("license_name", "license_link", "task_ids", *(k for k in card if k.startswith("extra_gated_"))):
            if card[key] in (None, []):
                del card[key]
        payload = json.dumps(data, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _resolve_paths(recipe: Recipe, base: Path) -> None:
    """Relative paths in a recipe are relative to the recipe file, so a recipe works from any folder."""

    def fix(p: str | None) -> str | None:
        if p is None or p.startswith("package:"):
            return p
        if p.startswith("~"):  # the user's home, as in a shell (`~/x`, `~user/x`), not a folder named `~`
            p = str(Path(p).expanduser())
        if Path(p).is_absolute():
            return p
        return str((base / p).resolve())

    for spec in [*recipe.sources, *recipe.decontamination.against]:
        spec.path = fix(spec.path)
        if spec.dataset and spec.dataset.startswith("."):  # a local dataset folder
            spec.dataset = fix(spec.dataset)
    recipe.output.dir = fix(recipe.output.dir) or recipe.output.dir
    if recipe.teacher.cache_dir:
        recipe.teacher.cache_dir = fix(recipe.teacher.cache_dir)
    if recipe.ruleset.endswith((".yaml", ".yml")):
        recipe.ruleset = fix(recipe.ruleset) or recipe.ruleset


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe; every problem names the file, line and field. Checks that need the stages
    (generator names, the rule book, source files) are `ascl_data.pipeline.check_recipe`."""
    path = Path(path)
    recipe = load_yaml_model(path, Recipe, what=f"recipe {path}")
    _resolve_paths(recipe, path.resolve().parent)
    if "batch_size" in recipe.teacher.model_fields_set:
        warnings.warn(
            f"{path}: teacher.batch_size is deprecated and ignored: a build no longer sends prompts in batches. Set "
            "teacher.max_in_flight for the teacher requests in flight at once, and an in-process engine's batch with "
            "teacher.settings.batch_size", FutureWarning, stacklevel=2)
    return recipe


__all__ = ["KINDS", "RATERS", "TEACHERS", "OpenAIRater", "OpenAITeacher", "QualityConfig", "RaterConfig", "Recipe",
           "SourceSpec", "TeacherConfig", "TransformersRater", "TransformersTeacher", "VLLMRater", "VLLMTeacher",
           "load_recipe"]
