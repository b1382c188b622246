"""The data contract: prompts, traces and rejections (rule books: `ascl_data.rulebook`).

Every object that crosses a boundary (a YAML file, a teacher's answer, a parquet row) is validated here, so the
rest of the package can trust what it holds. Traces use the OpenAI chat format so that TRL, vLLM and
``apply_chat_template(messages, tools=tools)`` take them as they are.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from functools import lru_cache
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Kind = Literal["harmful", "borderline", "benign", "reasoning", "jailbreak"]
KINDS: tuple[str, ...] = ("harmful", "borderline", "benign", "reasoning", "jailbreak")
Verdict = Literal["comply", "refuse", "safe_complete"]
Role = Literal["system", "user", "assistant", "tool"]
Split = Literal["sft", "rl", "eval"]
SPLITS: tuple[Split, ...] = ("sft", "rl", "eval")

class StrictModel(BaseModel):
    """The package's base model: unknown fields are errors, so a typo in a file never passes silently."""

    model_config = ConfigDict(extra="forbid")




def inline_reasoning(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of a chat message with an assistant's `reasoning_content` moved into `content` as
    `<think>...</think>` (for chat templates that drop `reasoning_content`); `reasoning_content` becomes None."""
    out = dict(message)
    reasoning = out.get("reasoning_content")
    if out.get("role") == "assistant" and reasoning:
        out["content"] = f"<think>\n{reasoning}\n</think>\n\n{out.get('content') or ''}"
        out["reasoning_content"] = None
    return out


def is_blank(text: str | None) -> bool:
    """No visible character: empty, whitespace, or only invisible ones (zero-width space and joiners, a BOM, a
    word joiner: Unicode format and control characters), which `str.strip` keeps."""
    return not text or all(unicodedata.category(c) in ("Zs", "Zl", "Zp", "Cc", "Cf") for c in text)


def _non_blank(value: str, what: str) -> str:
    if is_blank(value):
        raise ValueError(f"{what} must not be empty")
    return value


# --------------------------------------------------------------------------- prompts


class Provenance(StrictModel):
    dataset: str
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    row: int | None = None


class PromptMessage(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content")
    @classmethod
    def _filled(cls, v: str) -> str:
        return _non_blank(v, "content")


class PromptRow(StrictModel):
    """A row of the `rl` and `eval` splits: the prompt in TRL's conversational `prompt` column (with the system
    prompt the traces were made with), its kind and reference."""

    prompt_id: str
    prompt: list[PromptMessage] = Field(min_length=1)
    kind: Kind
    category: str | None = None
    reference: str | None = None
    provenance: Provenance


class PromptRecord(StrictModel):
    """One prompt to answer, normalised from any source. Its id is a hash of its content."""

    id: str = ""
    messages: list[PromptMessage] = Field(min_length=1)
    kind: Kind
    category: str | None = None
    reference: str | None = None
    provenance: Provenance

    @model_validator(mode="after")
    def _last_is_user_and_id(self) -> PromptRecord:
        if self.messages[-1].role != "user":
            raise ValueError("the last message of a prompt must be a user turn")
        expected = self.content_id(self.messages)
        if not self.id:
            self.id = expected
        return self

    @staticmethod
    def content_id(messages: list[PromptMessage]) -> str:
        payload = json.dumps([m.model_dump() for m in messages], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    @property
    def text(self) -> str:
        return self.messages[-1].content


# --------------------------------------------------------------------------- traces


class FunctionCall(StrictModel):
    name: str
    arguments: str  # a JSON object as a string, as the OpenAI API sends it

    @field_validator("arguments", mode="before")
    @classmethod
    def _dump_mapping(cls, v: Any) -> Any:
        return json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v

    def parsed_arguments(self) -> dict[str, Any]:
        try:
            value = json.loads(self.arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments of tool call {self.name!r} are not JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise ValueError(f"arguments of tool call {self.name!r} must be a JSON object, got {type(value).__name__}")
        return value


class ToolCall(StrictModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(StrictModel):
    """An OpenAI chat message. Every key is present (None where unused) so that rows keep one arrow schema."""

    role: Role
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Message:
        if self.role == "assistant":
            if is_blank(self.content) and not self.tool_calls:
                raise ValueError("an assistant turn needs content or tool calls; it has neither")
        else:
            if self.tool_calls:
                raise ValueError(f"a {self.role} turn cannot carry tool_calls")
            if self.content is None:
                raise ValueError(f"a {self.role} turn needs content")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError(f"a {self.role} turn cannot carry tool_call_id")
        return self


class JudgeResult(StrictModel):
    judge: str  # "refusal_classifier", "model:<name>", "math_verify", ...
    verdict: Verdict | None = None
    passed: bool
    detail: str = ""


class TraceQuality(StrictModel):
    """Cheap measures of one trace (`ascl_data.pipeline.quality`), computed in the build after the judge; None (or
    empty) where a measure does not apply. Stored in the `sft` split and on rejected traces in `rejects`."""

    # retrieval fit: the retrieved rules against the prompt's category, where the source gives one the rule book has
    retrieval_fit: float | None = None  # share of the retrieved rules in the prompt's category
    retrieval_fit_rank: int | None = None  # 1-based rank (retrieval order) of the first rule in it; None: no rule is
    # query fit: share of the rules the tool calls retrieved that the prompt itself retrieves (its top 5, or top_k if
    # more, in the same categories)
    query_fit: float | None = None
    # citation faithfulness: rules the answer names (by id or title), those no tool call retrieved, and rule ids
    # (a rule-book category, "/", a slug) the rule book does not have
    cited_rules: list[str] = Field(default_factory=list)
    cited_not_retrieved: list[str] = Field(default_factory=list)
    unknown_rules: list[str] = Field(default_factory=list)
    answer_chars: int = 0
    tool_echo: float | None = None  # share of the answer's word 8-grams found verbatim in the tool responses
    flags: list[str] = Field(default_factory=list)  # the quality filters that fired (warned or rejected), by reason
    # the optional model rater (`quality.rater`), 1-5 each; None when it is off or gave no usable answer
    rating_helpful: int | None = None
    rating_rule_use: int | None = None
    rating_detail: str | None = None


def tool_schemas_by_name(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in tools if t.get("type") == "function"}


@lru_cache(maxsize=256)
def _compiled_validator(parameters_json: str) -> jsonschema.protocols.Validator:
    """Checking the schema and building a validator costs ~100x validating one call: do it once per schema."""
    schema = json.loads(parameters_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def arguments_errors(arguments: dict[str, Any], parameters: dict[str, Any]) -> jsonschema.ValidationError | None:
    """The first way tool-call arguments fail their JSON schema, or None."""
    validator = _compiled_validator(json.dumps(parameters, sort_keys=True))
    return jsonschema.exceptions.best_match(validator.iter_errors(arguments))


class Trace(StrictModel):
    """One conversation answered by a teacher, with what is needed to filter, weight and audit it."""

    prompt_id: str
    kind: Kind
    category: str | None = None
    messages: list[Message] = Field(min_length=2)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    generator: str
    teacher_model: str
    ruleset_name: str
    ruleset_version: str
    retrieved_rule_ids: list[str] = Field(default_factory=list)
    num_tool_calls: int = 0
    consulted: bool = False
    verdict: Verdict | None = None
    judge: list[JudgeResult] = Field(default_factory=list)
    # teacher usage for this prompt over all its attempts (rejected ones included): tokens and requests
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # from the prompt record, so the judge and the SFT rows need nothing beside the trace
    reference: str | None = None
    provenance: Provenance | None = None
    teacher_calls: int = 0
    attempts: int = 1  # the attempt the judge accepted (1: the first)
    quality: TraceQuality | None = None  # computed by the build after the judge

    @model_validator(mode="after")
    def _conversation(self) -> Trace:
        schemas = tool_schemas_by_name(self.tools)
        open_calls: dict[str, str] = {}
        n_calls = 0
        for i, msg in enumerate(self.messages):
            where = f"messages[{i}]"
            if msg.role == "tool":
                if msg.tool_call_id not in open_calls:
                    raise ValueError(
                        f"{where}: tool message answers tool_call_id {msg.tool_call_id!r}, which no earlier "
                        "assistant turn made (or which was already answered)"
                    )
                open_calls.pop(msg.tool_call_id)
            for call in msg.tool_calls or []:
                n_calls += 1
                fn = call.function
                if fn.name not in schemas:
                    raise ValueError(f"{where}: call {call.id!r} names unknown tool {fn.name!r}; offered: {sorted(schemas)}")
                try:
                    args = fn.parsed_arguments()
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
                exc = arguments_errors(args, schemas[fn.name].get("parameters", {"type": "object"}))
                if exc is not None:
                    path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
                    raise ValueError(
                        f"{where}: arguments of {fn.name!r} do not fit its schema at {path}: {exc.message}"
                    )
                if call.id in open_calls:
                    raise ValueError(f"{where}: duplicate tool_call id {call.id!r}")
                open_calls[call.id] = fn.name
        if open_calls:
            raise ValueError(f"tool calls {sorted(open_calls)} were never answered by a tool message")
        last = self.messages[-1]
        if last.role != "assistant" or last.tool_calls or is_blank(last.content):
            raise ValueError("the trace ends without a final answer: the last turn must be an assistant message with content")
        if n_calls != self.num_tool_calls:
            raise ValueError(f"num_tool_calls is {self.num_tool_calls} but the messages hold {n_calls} tool calls")
        if self.consulted != (n_calls > 0):
            raise ValueError(f"consulted is {self.consulted} but the messages hold {n_calls} tool calls")
        return self

    @property
    def final_answer(self) -> str:
        return self.messages[-1].content or ""

    # -- rows ---------------------------------------------------------------
    def to_row(self) -> dict[str, Any]:
        """A flat row for `datasets`/parquet: `tools` as a JSON string (TRL's SFTTrainer accepts that)."""
        row = self.model_dump(mode="json")
        row["tools"] = json.dumps(self.tools, ensure_ascii=False)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Trace:
        data = dict(row)
        if isinstance(data.get("tools"), str):
            data["tools"] = json.loads(data["tools"])
        return cls.model_validate(data)

    def chat_messages(self, think_inline: bool = False) -> list[dict[str, Any]]:
        """Messages for `apply_chat_template`; with `think_inline`, reasoning goes into content as <think>...</think>."""
        out = []
        for m in self.messages:
            d = inline_reasoning(m.model_dump()) if think_inline else m.model_dump()
            out.append({k: v for k, v in d.items() if v is not None})
        return out


Stage = Literal["source", "generation", "tool_loop", "schema", "judge", "behaviour", "reasoning", "quality"]


class Rejection(StrictModel):
    """Why a prompt did not become a trace. Nothing is dropped without one."""

    prompt_id: str
    kind: Kind | None = None
    stage: Stage
    reason: str  # machine-readable, snake_case
    detail: str  # for a person
    generator: str | None = None
    raw: str = ""  # the raw output (JSON of messages or text), kept for audit
    attempts: int = 1  # the answers sampled for this prompt (see generators[i].attempts), as in `sft`
    # teacher usage for this prompt over all its attempts
    teacher_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    quality: TraceQuality | None = None  # the rejected trace's quality fields, where a trace was made
    # every attempt's "stage/reason: detail", in order (one entry per sampled answer)
    attempt_reasons: list[str] = Field(default_factory=list)

    @field_validator("reason")
    @classmethod
    def _reason_shape(cls, v: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_]*$", v):
            raise ValueError(f"reason {v!r} must be snake_case")
        return v
