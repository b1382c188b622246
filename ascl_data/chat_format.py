"""Stored traces in the Hugging Face chat convention, for chat templates that do not take the OpenAI one.

Traces are stored in the OpenAI format: tool-call `arguments` are JSON strings and a tool-calling assistant turn
has `content: null`. That is what the OpenAI API, vLLM and Arrow/parquet want (a string column holds any
arguments; a struct column would gain every key any call ever used, filled with nulls). Many chat templates
(GLM-4, LFM2 v2, Nemotron 3, Qwen3.5+, Gemma 4, ...) iterate `arguments.items()` and fail on a string, and others
concatenate `content` and fail on null. The Hugging Face convention (arguments as objects, empty-string content)
renders with every template TRL ships that can render tool calls; apply it per example, right before
`apply_chat_template`, or with `present_for_template`, which types each message as JSON (`datasets.Json`) so that
no Arrow struct fills the calls' keys with nulls.

Which convention a template takes is found by rendering a probe trace with it (`template_convention`), not from a
list of names: a template nobody listed works too, and one that cannot show a tool turn is named with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from ascl_data.errors import InputError, Problem


def to_hf_convention(messages: list[dict[str, Any]], *, json_arguments: bool = False) -> list[dict[str, Any]]:
    """OpenAI-format messages (as stored, or as a parquet row gives them back) -> the Hugging Face convention.

    Keys whose value is None are dropped (a parquet row fills absent fields with None, and templates test
    `is defined`); a None or missing `content` becomes ""; tool-call arguments become dicts. `json_arguments=True`
    keeps them as JSON strings, for the one template family that concatenates them as text (DeepSeek-V3/R1's
    original templates). The input is not modified. Arguments that are not JSON are left as they are, so the
    template shows exactly what the teacher wrote.
    """
    out = []
    for message in messages:
        m = {k: v for k, v in message.items() if v is not None}
        m["content"] = m.get("content") or ""
        if m.get("tool_calls"):
            m["tool_calls"] = [_hf_call(call, json_arguments) for call in m["tool_calls"]]
        else:
            m.pop("tool_calls", None)
        out.append(m)
    return out


def _hf_call(call: dict[str, Any], json_arguments: bool) -> dict[str, Any]:
    call = {k: v for k, v in call.items() if v is not None}
    fn = {k: v for k, v in call["function"].items() if v is not None}
    args = fn.get("arguments", {})
    if json_arguments:
        fn["arguments"] = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    elif isinstance(args, str):
        try:
            fn["arguments"] = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            pass
    return {**call, "function": fn}


# -- presenting rows to one chat template ----------------------------------------------------------------------------

Convention = Literal["mapping", "json"]
"""How a template wants tool-call `arguments`: `mapping` (dicts, the Hugging Face convention) or `json` (strings)."""

_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "retrieve_safety_rules",
        "description": "Retrieve the safety rules relevant to a request.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look up."},
                           "top_k": {"type": "integer", "description": "How many rules."}},
            "required": ["query"],
        },
    },
}
_PROBE_QUERY = "probe query zebra"
_PROBE_RESULT = '{"rules": [{"id": "probe/rule-okapi"}]}'
_PROBE_ANSWER = "Probe answer quokka."


def _probe_messages() -> list[dict[str, Any]]:
    """A consulted trace as the build stores it: system, user, a tool call, its result, the answer."""
    call = {"id": "call_0", "type": "function",
            "function": {"name": "retrieve_safety_rules", "arguments": json.dumps({"query": _PROBE_QUERY, "top_k": 1})}}
    return [
        {"role": "system", "content": "You may consult the safety rules."},
        {"role": "user", "content": "Probe request."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "name": "retrieve_safety_rules", "content": _PROBE_RESULT},
        {"role": "assistant", "content": _PROBE_ANSWER},
    ]


class ChatTemplateError(InputError):
    """A chat template that cannot show a tool turn in either convention: names the template and why."""


def template_name(chat_template: str | None, source: str) -> str:
    """`chat_template` as a user knows it: TRL's file of the same text (`glm4moe`), else `source` (the model or
    file it came from)."""
    if chat_template:
        try:
            import trl

            folder = Path(trl.__file__).parent / "chat_templates"
        except ImportError:  # a build-only install: no TRL, no names to match
            folder = None
        for path in sorted(folder.glob("*.jinja")) if folder is not None else []:
            if path.read_text(encoding="utf-8") == chat_template:
                return f"{path.stem} (TRL's chat_templates/{path.name}, the template of {source})"
    return f"the chat template of {source}"


def template_convention(tokenizer: Any, chat_template: str | None = None, source: str | None = None) -> Convention:
    """The convention `chat_template` (default: the tokenizer's) renders a tool turn in: `mapping` where it shows
    the call's name and arguments, the tool result and the answer from dict arguments, else `json` where it does
    from string arguments (DeepSeek-V3's original template concatenates them as text). A template that shows the
    tool turn in neither (no tool role, roles that must alternate, tool calls dropped) raises ChatTemplateError
    naming it and what went wrong each way."""
    why: dict[str, str] = {}
    for convention in ("mapping", "json"):
        messages = to_hf_convention(_probe_messages(), json_arguments=convention == "json")
        try:
            text = tokenizer.apply_chat_template(messages, tools=[_PROBE_TOOL], chat_template=chat_template,
                                                 tokenize=False)
        except Exception as exc:  # jinja2 errors and the templates' own raise_exception
            why[convention] = f"rendering fails: {type(exc).__name__}: {exc}"
            continue
        after_user = text.split("Probe request.", 1)[-1]
        missing = [what for what, piece in (("the call's name", "retrieve_safety_rules"),
                                            ("its arguments", _PROBE_QUERY), ("the tool result", "probe/rule-okapi"),
                                            ("the answer", _PROBE_ANSWER)) if piece not in after_user]
        if not missing:
            return convention  # type: ignore[return-value]
        why[convention] = "the rendered text lacks " + ", ".join(missing)
    name = template_name(chat_template or getattr(tokenizer, "chat_template", None),
                         source or getattr(tokenizer, "name_or_path", "") or "the tokenizer")
    raise ChatTemplateError("chat template", [Problem(
        name, "tool calls",
        "cannot show a tool-calling turn, so traces that consult the rules cannot be trained with it (arguments as "
        f"mappings: {why['mapping']}; as JSON strings: {why['json']}). Use a student whose template renders tool "
        "calls, or set chat_template_path to one that does (TRL ships several under trl/chat_templates)")])


def present_for_template(ds: Any, convention: Convention, message_fn: Any = None) -> Any:
    """`ds` (rows with `messages` as stored) with `messages` in the Hugging Face convention that `convention` names,
    typed `List(Json())`: each message is kept exactly as converted (a struct column would give every call the keys
    of all calls, filled with nulls). `message_fn`, if given, maps each stored message first (reasoning inline)."""
    from datasets import Features, Json, List

    features = Features({**ds.features, "messages": List(Json())})

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        messages = [message_fn(m) for m in row["messages"]] if message_fn is not None else row["messages"]
        return {"messages": to_hf_convention(messages, json_arguments=convention == "json")}

    return ds.map(convert, features=features, desc="Chat convention")
