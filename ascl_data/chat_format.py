"""Stored traces in the Hugging Face chat convention, for chat templates that do not take the OpenAI one.

Traces are stored in the OpenAI format: tool-call `arguments` are JSON strings and a tool-calling assistant turn
has `content: null`. That is what the OpenAI API, vLLM and Arrow/parquet want (a string column holds any
arguments; a struct column would gain every key any call ever used, filled with nulls). Many chat templates
(GLM-4, LFM2 v2, Nemotron 3, Qwen3.5+, Gemma 4, ...) iterate `arguments.items()` and fail on a string, and others
concatenate `content` and fail on null. The Hugging Face convention (arguments as objects, empty-string content)
renders with every template TRL ships that can render tool calls; apply it per example, right before
`apply_chat_template`, not with `Dataset.map` (that would put the dicts back into an Arrow struct).
"""

from __future__ import annotations

import json
from typing import Any


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
