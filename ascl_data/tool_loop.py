"""The multi-turn tool loop: conversations through a teacher, tool calls answered by the rule tool.

`run_conversation` drives one conversation on its own (the build's scheduler runs many side by side, with no
turn barrier; in-process engines batch the requests that wait together). `run_tool_loop` drives a batch in
lockstep, sending *all* still-open conversations of a turn to ``backend.generate`` in one call (for callers that
hold a batch, such as eval). A conversation ends at a final answer, or as a rejection with a
machine-readable reason: malformed or unknown tool calls, arguments that do not fit the schema, empty answers,
backend errors, runaway loops. Nothing crashes the batch and nothing is dropped silently.

`text_after_call` says how strictly a turn is read: `reject` (the build: a trace must end its turn at the call and
never write tool-result markup itself) or `drop` (eval: as a vLLM server with the `hermes` tool parser serves the
turn, the calls run and text after them is dropped, and an echoed `<tool_response>` is the answer's text;
`LoopOutcome.text_after_call` and `LoopOutcome.echoed_tool_result` keep both, so eval counts them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.errors import FatalError
from ascl_data.rule_tool import RuleTool
from ascl_data.schemas import PromptRecord, Rejection, arguments_errors, tool_schemas_by_name
from ascl_data.toolcalls import (
    EMPTY,
    MALFORMED,
    AfterCall,
    forged_tool_result,
    normalize_message,
    parse_plain,
    tool_call_id,
)

ToolHandler = Callable[[str], tuple[str, list[str]]]  # arguments JSON -> (content, retrieved rule ids)

# Rejection reasons of the tool loop (stage "tool_loop").
UNKNOWN_TOOL = "unknown_tool"
INVALID_ARGUMENTS = "invalid_tool_arguments"
BACKEND_ERROR = "backend_error"
TURN_LIMIT = "turn_limit_reached"
TOO_MANY_TOOL_CALLS = "too_many_tool_calls"
TRUNCATED = "truncated_answer"
TOOL_ERROR = "tool_error"


@dataclass
class LoopOutcome:
    """One conversation after the loop: its messages and counts, and `reason`/`detail` if it was rejected."""

    messages: list[dict[str, Any]]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    num_tool_calls: int = 0
    turns: int = 0
    retrieved_rule_ids: list[str] = field(default_factory=list)
    cached_turns: int = 0
    reason: str | None = None
    detail: str | None = None
    raw_text: str | None = None  # the last raw output, kept for audit when a turn failed to parse
    text_after_call: list[str] = field(default_factory=list)  # what `text_after_call="drop"` dropped, per turn
    echoed_tool_result: bool = False  # under "drop": the answer is tool-result markup the model wrote itself

    @property
    def ok(self) -> bool:
        return self.reason is None

    def raw(self) -> str:
        payload: dict[str, Any] = {"messages": self.messages}
        if self.raw_text is not None:
            payload["raw_text"] = self.raw_text
        return json.dumps(payload, ensure_ascii=False)

    def to_rejection(self, record: PromptRecord, generator: str | None) -> Rejection:
        assert self.reason is not None, "an accepted conversation is not a rejection"
        return Rejection(
            prompt_id=record.id,
            kind=record.kind,
            stage="tool_loop",
            reason=self.reason,
            detail=self.detail or self.reason,
            generator=generator,
            raw=self.raw(),
            teacher_calls=self.turns,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )


def default_handlers(rule_tool: RuleTool | None) -> dict[str, ToolHandler]:
    return {rule_tool.name: rule_tool.call_json} if rule_tool is not None else {}


async def run_tool_loop(
    conversations: Sequence[list[dict[str, Any]]],
    backend: Backend,
    params: SamplingParams,
    *,
    tools: list[dict[str, Any]] | None,
    rule_tool: RuleTool | None = None,
    handlers: dict[str, ToolHandler] | None = None,
    max_turns: int = 4,
    max_tool_calls: int = 3,
    reject_truncated: bool = True,
    text_after_call: AfterCall = "reject",
) -> list[LoopOutcome]:
    """Drive each conversation to a final answer or a rejection; outcomes come back in input order.

    `max_turns` bounds the assistant turns per conversation; `max_tool_calls` the tool calls over all turns.
    `handlers` maps tool names to functions (default: the rule tool's `call_json`); `text_after_call`: the module
    docstring.
    """
    tools = list(tools or [])
    schemas, handlers = _checked(tools, rule_tool, handlers, max_turns, max_tool_calls)
    outcomes = [LoopOutcome(messages=[dict(m) for m in conv]) for conv in conversations]
    open_ids = list(range(len(outcomes)))

    while open_ids:
        batch = [outcomes[i].messages for i in open_ids]
        try:
            completions = await backend.generate(batch, tools or None, params)
            if len(completions) != len(batch):
                raise RuntimeError(f"backend returned {len(completions)} completions for {len(batch)} conversations")
        except FatalError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing backend ends these conversations, not the build
            for i in open_ids:
                _reject(outcomes[i], BACKEND_ERROR, f"{type(exc).__name__}: {exc}")
            break
        still_open = []
        for i, completion in zip(open_ids, completions):
            if _step(outcomes[i], completion, schemas, handlers, max_turns, max_tool_calls, reject_truncated,
                     text_after_call):
                still_open.append(i)
        open_ids = still_open
    return outcomes


async def run_conversation(
    conversation: list[dict[str, Any]],
    backend: Backend,
    params: SamplingParams,
    *,
    tools: list[dict[str, Any]] | None,
    rule_tool: RuleTool | None = None,
    handlers: dict[str, ToolHandler] | None = None,
    max_turns: int = 4,
    max_tool_calls: int = 3,
    reject_truncated: bool = True,
    text_after_call: AfterCall = "reject",
) -> LoopOutcome:
    """One conversation to a final answer or a rejection, each turn sent as soon as the previous one is done
    (`backend.complete`); the same rules and reasons as `run_tool_loop`."""
    tools = list(tools or [])
    schemas, handlers = _checked(tools, rule_tool, handlers, max_turns, max_tool_calls)
    outcome = LoopOutcome(messages=[dict(m) for m in conversation])
    while True:
        try:
            completion = await backend.complete(outcome.messages, tools or None, params)
        except FatalError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing backend ends this conversation, not the build
            _reject(outcome, BACKEND_ERROR, f"{type(exc).__name__}: {exc}")
            return outcome
        if not _step(outcome, completion, schemas, handlers, max_turns, max_tool_calls, reject_truncated,
                     text_after_call):
            return outcome


def _checked(
    tools: list[dict[str, Any]], rule_tool: RuleTool | None, handlers: dict[str, ToolHandler] | None,
    max_turns: int, max_tool_calls: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, ToolHandler]]:
    """The tool schemas by name and a handler for each; a tool without a handler or a bad limit is an error."""
    if max_turns < 1 or max_tool_calls < 0:
        raise ValueError(f"max_turns must be >= 1 and max_tool_calls >= 0, got {max_turns} and {max_tool_calls}")
    schemas = tool_schemas_by_name(tools)
    handlers = dict(handlers) if handlers is not None else default_handlers(rule_tool)
    missing = sorted(set(schemas) - set(handlers))
    if missing:
        raise ValueError(f"tools {missing} are offered to the model but have no handler")
    return schemas, handlers


def _reject(outcome: LoopOutcome, reason: str, detail: str) -> bool:
    outcome.reason, outcome.detail = reason, detail
    return False


def _step(
    out: LoopOutcome,
    completion: Completion,
    schemas: dict[str, dict[str, Any]],
    handlers: dict[str, ToolHandler],
    max_turns: int,
    max_tool_calls: int,
    reject_truncated: bool,
    text_after_call: AfterCall = "reject",
) -> bool:
    """Apply one assistant turn; True while the conversation goes on."""
    out.turns += 1
    out.prompt_tokens += completion.prompt_tokens
    out.completion_tokens += completion.completion_tokens
    out.cached_turns += int(completion.cached)
    out.raw_text = completion.raw_text
    if completion.error:
        return _reject(out, completion.error_reason or BACKEND_ERROR, completion.error)
    raw_message = completion.message
    dropped = ""
    if raw_message is None:
        # A text backend could not parse the output (its parser is strict): re-parse the raw text, to say why, or,
        # with text_after_call="drop", to keep calls that only have text after them.
        why = parse_plain(completion.raw_text or "", after_call=text_after_call)
        if not why.ok or not (why.dropped or forged_tool_result((why.message or {}).get("content") or "")):
            return _reject(
                out,
                why.reason or MALFORMED,
                why.detail or f"turn {out.turns}: the backend could not turn the output into an assistant message",
            )
        raw_message, dropped = why.message, why.dropped
    parsed = normalize_message(raw_message, salt=f"turn{out.turns}", after_call=text_after_call)
    if not parsed.ok:
        return _reject(out, parsed.reason or MALFORMED, parsed.detail or "unparseable assistant message")
    message = parsed.message
    if dropped or parsed.dropped:
        out.text_after_call.append(dropped or parsed.dropped)
    calls = message.get("tool_calls") or []
    content = (message.get("content") or "").strip()
    if not calls:
        if not content:
            return _reject(out, EMPTY, f"turn {out.turns}: the assistant answered with no content and no tool call")
        if reject_truncated and completion.finish_reason == "length":
            out.messages.append(message)
            return _reject(out, TRUNCATED, f"turn {out.turns}: the answer hit max_tokens before it ended")
        out.messages.append(message)
        out.raw_text = None
        out.echoed_tool_result = forged_tool_result(content) is not None
        return False
    # Deterministic ids unique within the conversation: turn and position, name and arguments.
    for k, call in enumerate(calls):
        call["id"] = tool_call_id(call["function"]["name"], call["function"]["arguments"], f"{out.turns}:{k}")
    out.messages.append(message)
    for call in calls:
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        if name not in schemas:
            return _reject(out, UNKNOWN_TOOL, f"turn {out.turns}: call to unknown tool {name!r}; offered: {sorted(schemas)}")
        try:
            exc = arguments_errors(json.loads(arguments), schemas[name].get("parameters", {"type": "object"}))
        except json.JSONDecodeError as err:
            return _reject(out, INVALID_ARGUMENTS, f"turn {out.turns}: arguments of {name!r} are not JSON: {err.msg}")
        if exc is not None:  # the schema's validator is built once, not per call (that costs ~100x a check)
            path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            return _reject(
                out, INVALID_ARGUMENTS, f"turn {out.turns}: arguments of {name!r} do not fit its schema at {path}: {exc.message}"
            )
    if out.num_tool_calls + len(calls) > max_tool_calls:
        return _reject(
            out,
            TOO_MANY_TOOL_CALLS,
            f"turn {out.turns}: {out.num_tool_calls + len(calls)} tool calls would exceed the limit of {max_tool_calls}",
        )
    for call in calls:
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        try:
            result, rule_ids = handlers[name](arguments)
        except Exception as exc:  # noqa: BLE001 - a user's handler failing ends this conversation only
            return _reject(out, TOOL_ERROR, f"turn {out.turns}: tool {name!r} raised {type(exc).__name__}: {exc}")
        out.num_tool_calls += 1
        for rid in rule_ids:
            if rid not in out.retrieved_rule_ids:
                out.retrieved_rule_ids.append(rid)
        out.messages.append({"role": "tool", "content": result, "tool_call_id": call["id"], "name": name})
    if out.turns >= max_turns:
        return _reject(
            out, TURN_LIMIT, f"the assistant was still calling tools after {out.turns} turns (limit {max_turns})"
        )
    return True
