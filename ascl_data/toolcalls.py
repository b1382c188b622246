"""Tool calls out of model text (Hermes/Qwen ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``).

Text-only backends (transformers, vLLM's offline engine, a server without a tool parser) hand their raw text to
:func:`parse_assistant_text`. Where a tokenizer is at hand we reuse transformers' response parsing (TRL's
``add_response_schema`` + ``tokenizer.parse_response``), so a trace reads exactly as TRL will read it during
training; a plain parser checks the structure first and serves as the fallback, because TRL's parser turns a
malformed call silently into plain text and we need to know *what* was wrong.

Every call gets a deterministic id (``call_<sha256>``), so a rerun gives byte-identical traces.

Text after the last complete call is an error by default (a trace must end its turn at the call), and so is an
answer that writes tool-result markup itself (a small model echoing the last ``<tool_response>``). Eval may ask for
``after_call="drop"`` instead, to read a turn as a vLLM server with the ``hermes`` tool parser returns it to a client:
the calls are kept and the text after them is dropped (its content is the text before the first ``<tool_call>``;
the dropped text comes back in ``ParseResult.dropped`` so the caller counts it), and an echoed tool result is the
answer's text (the parser passes text with no ``<tool_call>`` through as content; the tool loop flags it). Markup
written beside a call stays malformed in both: a forged result next to a real call is not an answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from ascl_data.chat_format import to_hf_convention

MALFORMED = "malformed_tool_call"
EMPTY = "empty_answer"

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
TOOL_RESPONSE_OPEN = "<tool_response>"
TOOL_RESPONSE_CLOSE = "</tool_response>"
TOOL_MARKUP = (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE)
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# End-of-turn markers a backend may leave in the text when it decodes without skipping special tokens.
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>")

AfterCall = Literal["reject", "drop"]  # strict (the build), or as vLLM's hermes parser serves a turn (eval)

_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)


@dataclass(frozen=True)
class ParseResult:
    """An OpenAI assistant message, or why the text could not become one (`reason` snake_case, `detail` for people)."""

    message: dict[str, Any] | None
    reason: str | None = None
    detail: str | None = None
    dropped: str = ""  # text after the last tool call that `after_call="drop"` left out of the message

    @property
    def ok(self) -> bool:
        return self.message is not None


def tool_call_id(name: str, arguments: str, salt: str = "") -> str:
    """A deterministic id for a call: same call at the same place, same id, run after run."""
    digest = hashlib.sha256(f"{salt}\x00{name}\x00{arguments}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def canonical_arguments(arguments: Any) -> str:
    """Arguments as the OpenAI API sends them: a JSON object in a string (dicts are dumped, strings kept)."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


def _strip_end_markers(text: str, extra: tuple[str, ...] = ()) -> str:
    text = text.rstrip()
    changed = True
    while changed:
        changed = False
        for marker in (*END_MARKERS, *extra):
            if marker and text.endswith(marker):
                text = text[: -len(marker)].rstrip()
                changed = True
    return text


def _split_reasoning(text: str) -> tuple[str | None, str]:
    """`<think>...</think>` (or a bare `</think>` when the template pre-wrote the opener) -> (reasoning, rest)."""
    stripped = text.lstrip()
    if THINK_CLOSE in stripped and (stripped.startswith(THINK_OPEN) or THINK_OPEN not in stripped):
        head, rest = stripped.split(THINK_CLOSE, 1)
        reasoning = head.removeprefix(THINK_OPEN).strip()
        return (reasoning or None), rest.strip()
    return None, text.strip()


def _parse_call(block: str, index: int) -> tuple[str, str] | str:
    """One `<tool_call>` body -> (name, arguments JSON string), or an error text naming what is wrong."""
    where = f"tool call {index + 1}"
    try:
        payload = json.loads(block)
    except json.JSONDecodeError as exc:
        snippet = block.strip()[:120]
        return f"{where} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {snippet!r}"
    if not isinstance(payload, dict):
        return f"{where} must be a JSON object with 'name' and 'arguments', got {type(payload).__name__}"
    if isinstance(payload.get("function"), dict):  # {"type": "function", "function": {...}} shape
        payload = payload["function"]
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        return f"{where} has no 'name' (a non-empty string); keys present: {sorted(payload)}"
    args: Any = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            return f"{where} ({name}): 'arguments' is a string that is not JSON ({exc.msg})"
    if not isinstance(args, dict):
        return f"{where} ({name}): 'arguments' must be a JSON object, got {type(args).__name__}"
    return name.strip(), json.dumps(args, ensure_ascii=False)


def parse_plain(text: str, end_markers: tuple[str, ...] = (), after_call: AfterCall = "reject") -> ParseResult:
    """The tokenizer-free parser: reasoning, content and tool calls, with an error naming what is wrong.

    `after_call="drop"` keeps the calls of a turn that writes on after its last complete call and drops the rest
    (`ParseResult.dropped`), and keeps echoed tool-result markup in a turn with no call as its content, as vLLM's
    hermes parser does; a call opened and never closed, or markup beside a call, stays malformed."""
    body = _strip_end_markers(text or "", end_markers)
    reasoning, body = _split_reasoning(body)
    calls: list[tuple[str, str]] = []
    pieces: list[str] = []
    pos = 0
    for i, match in enumerate(_BLOCK.finditer(body)):
        pieces.append(body[pos : match.start()])
        parsed = _parse_call(match.group(1), i)
        if isinstance(parsed, str):
            return ParseResult(None, MALFORMED, parsed)
        calls.append(parsed)
        pos = match.end()
    tail = body[pos:]
    if TOOL_CALL_OPEN in tail:
        return ParseResult(None, MALFORMED, f"tool call {len(calls) + 1} opens {TOOL_CALL_OPEN} but never closes it")
    dropped = ""
    if calls and tail.strip() and after_call == "drop":
        dropped, tail = tail.strip(), ""
    if TOOL_CALL_CLOSE in tail or any(TOOL_CALL_CLOSE in p for p in pieces):
        return ParseResult(None, MALFORMED, f"a stray {TOOL_CALL_CLOSE} without a matching {TOOL_CALL_OPEN}")
    if calls and tail.strip():
        return ParseResult(
            None, MALFORMED, f"text after the last {TOOL_CALL_CLOSE} (a tool call must end the turn): {tail.strip()[:120]!r}"
        )
    content = (pieces[0] if pieces else tail).strip()
    if calls and any(p.strip() for p in pieces[1:]):
        return ParseResult(None, MALFORMED, "text between tool calls (content must come before the first call)")
    if (after_call == "reject" or calls) and (forged := forged_tool_result(content)):
        return ParseResult(None, MALFORMED, forged)
    return ParseResult(_assistant(content, reasoning, calls, salt=text), dropped=dropped)


def forged_tool_result(content: str) -> str | None:
    """Why an assistant text that writes tool-result markup is not an answer (small models echo the last
    `<tool_response>` block instead of answering), or None."""
    for marker in (TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE):
        if marker in content:
            return f"the assistant wrote {marker} itself (tool results come from the tool): {content.strip()[:120]!r}"
    return None


def _assistant(content: str, reasoning: str | None, calls: list[tuple[str, str]], salt: str) -> dict[str, Any]:
    if not calls and not content:
        # Not a parse error, but no message either: the tool loop rejects it as an empty answer.
        return {"role": "assistant", "content": "", **({"reasoning_content": reasoning} if reasoning else {})}
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {"id": tool_call_id(n, a, f"{i}:{salt}"), "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ]
    return message


def ensure_response_parser(tokenizer: Any) -> bool:
    """Give a tokenizer TRL's response parser for its chat template; False where TRL does not know the template."""
    if getattr(tokenizer, "response_template", None) or getattr(tokenizer, "response_schema", None):
        return True
    try:
        from trl.chat_template_utils import add_response_schema

        add_response_schema(tokenizer)
    except (ValueError, ImportError, AttributeError):
        return False
    return True


def parse_assistant_text(text: str, tokenizer: Any | None = None, prefix: str | None = None) -> ParseResult:
    """Raw assistant text -> OpenAI assistant message, or the reason it is malformed.

    With a tokenizer that has (or can be given) a response parser, its parse is the one returned, so traces match
    what TRL reads; `prefix` is the rendered prompt (templates may pre-write part of the answer). Arguments are
    not coerced to the tool's types: a model that writes `"top_k": "3"` made a mistake the tool loop must see.
    """
    plain = parse_plain(text, (getattr(tokenizer, "eos_token", None) or "",) if tokenizer is not None else ())
    if not plain.ok or tokenizer is None or not ensure_response_parser(tokenizer):
        return plain
    try:
        kwargs: dict[str, Any] = {}
        if getattr(tokenizer, "response_template", None) is not None:
            kwargs["prefix"] = prefix or ""
        parsed = tokenizer.parse_response(text, **kwargs)
    except (ValueError, TypeError, KeyError):
        return plain  # the plain parser accepted it; transformers' regex is stricter about layout
    if not isinstance(parsed, dict):
        return plain
    try:
        calls = [
            (c["function"]["name"], canonical_arguments(c["function"].get("arguments", {})))
            for c in parsed.get("tool_calls") or []
        ]
    except (KeyError, TypeError):
        return plain
    if [n for n, _ in calls] != [c["function"]["name"] for c in plain.message.get("tool_calls") or []]:
        return plain  # the two parsers disagree on the calls: trust the one that explains itself
    eos = getattr(tokenizer, "eos_token", None) or ""
    content = _strip_end_markers(parsed.get("content") or "", (eos,)).strip()
    reasoning = (parsed.get("reasoning_content") or "").strip() or None
    return ParseResult(_assistant(content, reasoning, calls, salt=text))


def normalize_message(message: dict[str, Any], salt: str = "", after_call: AfterCall = "reject") -> ParseResult:
    """An assistant message from an OpenAI-compatible server, checked and shaped like the parsers' output:
    arguments as JSON strings of objects, `<think>` split out of content, ids filled in deterministically.
    `after_call` applies where the calls are still in the text (a server without a tool parser)."""
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning") or None
    if reasoning is None and isinstance(content, str):
        reasoning, content = _split_reasoning(content)
    raw_calls = message.get("tool_calls") or []
    if not raw_calls and TOOL_CALL_OPEN in (content or ""):
        # The server had no tool parser: the calls are still in the text.
        return parse_plain(content if reasoning is None else f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{content}",
                           after_call=after_call)
    calls: list[tuple[str, str]] = []
    for i, call in enumerate(raw_calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"].strip():
            return ParseResult(None, MALFORMED, f"tool call {i + 1} has no function name")
        args = fn.get("arguments")
        if isinstance(args, str):
            try:
                decoded = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                return ParseResult(None, MALFORMED, f"tool call {i + 1} ({fn['name']}): arguments are not JSON ({exc.msg})")
        else:
            decoded = args if args is not None else {}
        if not isinstance(decoded, dict):
            return ParseResult(
                None, MALFORMED, f"tool call {i + 1} ({fn['name']}): arguments must be a JSON object, got {type(decoded).__name__}"
            )
        calls.append((fn["name"], json.dumps(decoded, ensure_ascii=False)))
    if (after_call == "reject" or calls) and isinstance(content, str) and (forged := forged_tool_result(content)):
        return ParseResult(None, MALFORMED, forged)
    return ParseResult(_assistant((content or "").strip(), reasoning, calls, salt=salt or json.dumps(message, sort_keys=True, default=str)))


def template_messages(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages for `apply_chat_template`, in the Hugging Face convention (see `ascl_data.chat_format`)."""
    return to_hf_convention(conversation)
