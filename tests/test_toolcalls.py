"""Tool calls out of model text: the shapes teachers emit, the malformed ones and why, deterministic ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from ascl_data.toolcalls import MALFORMED, normalize_message, parse_assistant_text, parse_plain, template_messages

CALL = '<tool_call>\n{"name": "retrieve_safety_rules", "arguments": {"query": "bomb", "top_k": 2}}\n</tool_call>'


@pytest.fixture(scope="module")
def tokenizer(embedded_model_dir: Path):
    # A fresh copy: the parser mutates the tokenizer (adds TRL's response template).
    return AutoTokenizer.from_pretrained(embedded_model_dir)


def test_plain_answer_and_reasoning() -> None:
    msg = parse_plain("<think>\nIs this allowed? Yes.\n</think>\n\nHere is how to bake bread.<|im_end|>").message
    assert msg == {"role": "assistant", "content": "Here is how to bake bread.", "reasoning_content": "Is this allowed? Yes."}
    # A template that pre-writes <think> leaves only the closing tag in the generated text.
    msg = parse_plain("thinking...</think>answer").message
    assert msg["reasoning_content"] == "thinking..." and msg["content"] == "answer"


def test_content_and_two_calls_with_string_arguments() -> None:
    text = f"Let me check.\n{CALL}\n<tool_call>\n{{\"name\": \"other\", \"arguments\": \"{{\\\"a\\\": 1}}\"}}\n</tool_call>"
    msg = parse_plain(text).message
    assert msg["content"] == "Let me check."
    names = [c["function"]["name"] for c in msg["tool_calls"]]
    assert names == ["retrieve_safety_rules", "other"]
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"query": "bomb", "top_k": 2}
    assert msg["tool_calls"][1]["function"]["arguments"] == '{"a": 1}'
    ids = [c["id"] for c in msg["tool_calls"]]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2
    assert [c["id"] for c in parse_plain(text).message["tool_calls"]] == ids  # reruns are byte-identical


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('<tool_call>\n{"name": "f", "arguments": {"a": 3}\n</tool_call>', "tool call 1 is not JSON"),
        ('<tool_call>\n{"arguments": {"a": 3}}\n</tool_call>', "has no 'name'"),
        ('<tool_call>\n{"name": "f", "arguments": [1, 2]}\n</tool_call>', "'arguments' must be a JSON object, got list"),
        ('<tool_call>\n{"name": "f", "arguments": "{oops"}\n</tool_call>', "'arguments' is a string that is not JSON"),
        ('<tool_call>\n["f"]\n</tool_call>', "must be a JSON object with 'name'"),
        ('<tool_call>\n{"name": "f", "arguments": {}}', "never closes it"),
        (f"{CALL}\n<tool_response>made up</tool_response>", "text after the last </tool_call>"),
        ('{"name": "f"}</tool_call>', "stray </tool_call>"),
        ('<tool_response>\n{"rules": []}\n</tool_response>\nSure.', "wrote <tool_response> itself"),
    ],
)
def test_malformed_calls_say_what_is_wrong(text: str, needle: str, tokenizer) -> None:
    for result in (parse_plain(text), parse_assistant_text(text, tokenizer)):
        assert not result.ok and result.reason == MALFORMED
        assert needle in result.detail


def test_text_after_the_last_call_is_dropped_only_when_asked() -> None:
    """What vLLM's hermes parser does with text after a complete call (the calls are kept, the text is not), eval
    asks for with `after_call="drop"`; the build keeps rejecting it, and the dropped text is handed back."""
    text = f"{CALL}\nI can't help with that.<|im_end|>"
    assert parse_plain(text).reason == MALFORMED
    dropped = parse_plain(text, ("<|im_end|>",), after_call="drop")
    assert dropped.ok and dropped.dropped == "I can't help with that."
    assert dropped.message["content"] == "" and [c["function"]["name"] for c in dropped.message["tool_calls"]] == [
        "retrieve_safety_rules"]
    forged = parse_plain(f"{CALL}\n<tool_response>made up</tool_response>", after_call="drop")
    assert forged.ok and forged.dropped == "<tool_response>made up</tool_response>"  # vLLM drops it too
    clean = parse_plain(CALL, after_call="drop")
    assert clean.ok and clean.dropped == ""
    # a second call that never closes (vLLM cannot parse it either) and markup beside a call stay malformed
    assert "wrote <tool_response>" in parse_plain("<tool_response>x</tool_response>").detail  # the build
    echoed = parse_plain("<tool_response>x</tool_response>", after_call="drop")  # eval: the text vLLM returns
    assert echoed.ok and echoed.message == {"role": "assistant", "content": "<tool_response>x</tool_response>"}
    assert "never closes" in parse_plain(f"{CALL}\n<tool_call>{{", after_call="drop").detail
    assert "wrote <tool_response>" in parse_plain(f"<tool_response>x</tool_response>{CALL}", after_call="drop").detail
    served = normalize_message({"role": "assistant", "content": f"{CALL} and more"}, after_call="drop")
    assert served.ok and served.dropped == "and more"  # a server without a tool parser: the same rule


def test_tokenizer_parser_agrees_with_template_round_trip(tokenizer) -> None:
    """Render an assistant turn with the real chat template, parse the text back: the same message."""
    call = {"id": "x", "type": "function", "function": {"name": "retrieve_safety_rules", "arguments": '{"query": "bomb"}'}}
    conv = [{"role": "user", "content": "how do bombs work?"}, {"role": "assistant", "content": "Checking.", "tool_calls": [call]}]
    rendered = tokenizer.apply_chat_template(template_messages(conv), tokenize=False)
    prefix, generated = rendered.rsplit("<|im_start|>assistant\n", 1)
    result = parse_assistant_text(generated, tokenizer, prefix=prefix + "<|im_start|>assistant\n")
    assert result.ok, result.detail
    assert result.message["content"] == "Checking."
    [parsed_call] = result.message["tool_calls"]
    assert parsed_call["function"] == {"name": "retrieve_safety_rules", "arguments": '{"query": "bomb"}'}
    assert getattr(tokenizer, "response_template", None) or getattr(tokenizer, "response_schema", None)
    assert parse_assistant_text(generated, tokenizer).message == parse_plain(generated).message


def test_normalize_openai_messages() -> None:
    ok = normalize_message(
        {"role": "assistant", "content": None, "refusal": None,
         "tool_calls": [{"id": "srv-random", "type": "function", "function": {"name": "f", "arguments": {"q": 1}}}]}
    )
    assert ok.ok and ok.message["tool_calls"][0]["function"]["arguments"] == '{"q": 1}'
    assert "refusal" not in ok.message and ok.message["content"] == ""
    bad = normalize_message({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{no"}}]})
    assert bad.reason == MALFORMED and "arguments are not JSON" in bad.detail
    inline = normalize_message({"role": "assistant", "content": "<think>hmm</think>Answer."})
    assert inline.message == {"role": "assistant", "content": "Answer.", "reasoning_content": "hmm"}
    echoed = normalize_message({"role": "assistant", "content": '<tool_response>\n{"rules": []}\n</tool_response>'})
    assert echoed.reason == MALFORMED and "wrote <tool_response> itself" in echoed.detail
    # A server without a tool parser leaves the call in the text.
    textual = normalize_message({"role": "assistant", "content": CALL})
    assert textual.message["tool_calls"][0]["function"]["name"] == "retrieve_safety_rules"


def test_template_messages_drop_none_and_decode_arguments() -> None:
    conv = [{"role": "assistant", "content": "", "reasoning_content": None, "tool_call_id": None,
             "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}]
    [m] = template_messages(conv)
    assert set(m) == {"role", "content", "tool_calls"} and m["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert conv[0]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'  # the input is not mutated
