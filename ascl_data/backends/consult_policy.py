"""Consultation policy for backends that render prompts themselves (`transformers`, `vllm`): prefixed generation.

`auto` leaves the choice to the teacher; `forbidden` offers no tool; `required` makes the teacher's first turn a
call of the (first) offered tool. An OpenAI-compatible server does that with `tool_choice`; a text backend writes
the start of the call into the prompt and lets the model complete it. The start is taken from the chat template
itself (a tool call rendered with a marker argument, cut at the marker), so it is the exact format the model was
trained on; for the Hermes/Qwen template the embedded teacher uses it is
``<tool_call>\\n{"name": "retrieve_safety_rules", "arguments": {"query": "``. The model only writes the query:
where the opening ends in a quote, the call is closed for it at the query's closing quote with the template's own
closing (``"}}\\n</tool_call>``), so extra keys or text after the query never reach the trace.

A backend calls, per conversation: `render_prompt` (prompt text, with the forced start appended), generates from
`prompt.text`, then `parse_completion` (forced start + completion, parsed by `ascl_data.toolcalls`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ascl_data.chat_format import to_hf_convention
from ascl_data.toolcalls import END_MARKERS, TOOL_CALL_CLOSE, ParseResult, parse_assistant_text

ConsultPolicy = Literal["auto", "required", "forbidden"]
POLICIES: tuple[str, ...] = get_args(ConsultPolicy)
_MARKER = "ASCLxFORCEDxARGUMENT"


@dataclass(frozen=True)
class PolicyPrompt:
    """A rendered prompt under a policy. `text` is what the model continues; `forced` the assistant text already
    written for it (empty unless `required` applies); `tools` what was offered (None under `forbidden`)."""

    text: str
    forced: str
    tools: list[dict[str, Any]] | None
    closing: str = ""  # the template's text after the forced argument's value, to the end of the call

    def call_closed(self, completion: str) -> bool:
        """Whether `completion` (what the model wrote after `forced`) already holds the rest of the forced call:
        the forced argument's closing quote, or the call's close. What follows is cut by `assistant_text` anyway,
        so a backend stops generating there (a small model otherwise writes on to `max_tokens`)."""
        if not self.forced:
            return False
        quote = self.forced[-1]
        if quote in "\"'" and self.closing.startswith(quote) and _closing_quote(completion, quote) is not None:
            return True
        return TOOL_CALL_CLOSE in completion

    @property
    def template_prompt(self) -> str:
        """The prompt as the chat template rendered it, without the forced start (TRL's parser wants it)."""
        return self.text[: len(self.text) - len(self.forced)] if self.forced else self.text


def check_policy(policy: str) -> ConsultPolicy:
    if policy not in POLICIES:
        raise ValueError(f"unknown consult policy {policy!r}; choose one of {list(POLICIES)}")
    return policy  # type: ignore[return-value]


def offered_tools(policy: str, tools: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The tools to offer: none under `forbidden` (the template then shows no tool at all)."""
    return None if check_policy(policy) == "forbidden" or not tools else list(tools)


def forces_call(policy: str, conversation: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None) -> bool:
    """`required` binds the teacher's first turn only: the one that answers the prompt's last user message
    (later turns follow a tool result)."""
    return check_policy(policy) == "required" and bool(tools) and bool(conversation) and conversation[-1]["role"] == "user"


def _first_argument(tool: dict[str, Any]) -> str:
    params = tool.get("function", tool).get("parameters") or {}
    names = list(params.get("required") or []) + list(params.get("properties") or {})
    if not names:
        raise ValueError(f"tool {tool.get('function', tool).get('name')!r} has no parameters to start a forced call with")
    return names[0]


def tool_call_opening(tokenizer: Any, conversation: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> str:
    """The assistant text the chat template writes before the value of the first tool's first argument."""
    return _call_parts(tokenizer, conversation, tools)[0]


def _call_parts(
    tokenizer: Any, conversation: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
) -> tuple[str, str]:
    """(opening, closing): the template's text before and after the first argument's value in a one-call turn.

    Rendered from the template (the conversation with and without a marker call), so any template that shows tool
    calls in-line works; a template whose history rendering does not extend its generation prompt is refused.
    """
    tool = tools[0].get("function", tools[0])
    argument = _first_argument(tools[0])
    messages = to_hf_convention(list(conversation))
    call = {"id": "call_0", "type": "function", "function": {"name": tool["name"], "arguments": {argument: _MARKER}}}
    refused = (
        "so a `required` call cannot be prefixed; use a tool-calling template or the `openai` backend's tool_choice"
    )
    prompt = tokenizer.apply_chat_template(messages, tools=list(tools), add_generation_prompt=True, tokenize=False)
    try:
        with_call = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": "", "tool_calls": [call]}], tools=list(tools), tokenize=False
        )
    except Exception as exc:  # noqa: BLE001 - jinja raises anything (TemplateError, TypeError, UndefinedError)
        raise ValueError(f"this chat template cannot render a tool call ({type(exc).__name__}: {exc}), {refused}") from None
    if not with_call.startswith(prompt) or _MARKER not in with_call[len(prompt) :]:
        raise ValueError(
            f"this chat template does not render an assistant tool call as a continuation of its generation prompt, {refused}"
        )
    at = with_call.index(_MARKER, len(prompt))
    closing = with_call[at + len(_MARKER) :]
    for marker in (*END_MARKERS, getattr(tokenizer, "eos_token", None) or ""):
        if marker and marker in closing:
            closing = closing[: closing.index(marker)]
    return with_call[len(prompt) : at], closing.rstrip()


def render_prompt(
    tokenizer: Any, conversation: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None, policy: str
) -> PolicyPrompt:
    """The prompt text for one conversation under `policy` (see the module docstring)."""
    offered = offered_tools(policy, tools)
    text = tokenizer.apply_chat_template(
        to_hf_convention(list(conversation)), tools=offered, add_generation_prompt=True, tokenize=False
    )
    forced, closing = _call_parts(tokenizer, conversation, offered) if forces_call(policy, conversation, offered) else ("", "")
    return PolicyPrompt(text=text + forced, forced=forced, tools=offered, closing=closing)


def assistant_text(prompt: PolicyPrompt, completion: str) -> str:
    """The whole assistant turn: the forced start plus what the model wrote. A forced turn is one tool call: where
    the forced argument is a quoted string, the model's value ends at its closing quote and the template's closing
    follows; otherwise the turn ends at the call's close (`</tool_call>`). Stop generation there to save tokens."""
    if not prompt.forced:
        return completion
    quote = prompt.forced[-1]
    if quote in "\"'" and prompt.closing.startswith(quote):
        end = _closing_quote(completion, quote)
        if end is not None:
            return prompt.forced + completion[:end] + prompt.closing
    if TOOL_CALL_CLOSE in completion:
        completion = completion[: completion.index(TOOL_CALL_CLOSE) + len(TOOL_CALL_CLOSE)]
    return prompt.forced + completion


def _closing_quote(text: str, quote: str) -> int | None:
    """Index of the first unescaped `quote` in `text`, or None."""
    escaped = False
    for i, ch in enumerate(text):
        if ch == quote and not escaped:
            return i
        escaped = ch == "\\" and not escaped
    return None


def parse_completion(prompt: PolicyPrompt, completion: str, tokenizer: Any | None = None) -> tuple[str, ParseResult]:
    """(full assistant text, its parse): what a text backend puts into `Completion.raw_text` and `.message`."""
    text = assistant_text(prompt, completion)
    return text, parse_assistant_text(text, tokenizer, prefix=prompt.template_prompt)
