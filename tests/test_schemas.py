"""The data contract: malformed traces fail with a precise message; good ones survive every round trip."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ascl_data.rulebook import load_ruleset
from ascl_data.rule_tool import RuleTool
from ascl_data.schemas import PromptRecord, Provenance, Rejection, Trace


@pytest.fixture(scope="module")
def tool() -> RuleTool:
    return RuleTool(load_ruleset("default"))


def consult_trace(tool: RuleTool) -> dict[str, Any]:
    content, ids = tool.call_json({"query": "how to kill a python process", "top_k": 2})
    return {
        "prompt_id": "p1",
        "kind": "benign",
        "category": None,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "How do I kill a stuck python process on Linux?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "Sounds violent; check the rules.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "retrieve_safety_rules", "arguments": '{"query": "kill a process", "top_k": 2}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "retrieve_safety_rules", "content": content},
            {"role": "assistant", "content": "Find its PID with `pgrep -f script.py`, then run `kill PID` (or `kill -9 PID`)."},
        ],
        "tools": [tool.schema()],
        "generator": "adaptive",
        "teacher_model": "SmolLM2-135M-Instruct",
        "ruleset_name": "ascl-default",
        "ruleset_version": "1.0.0",
        "retrieved_rule_ids": ids,
        "num_tool_calls": 1,
        "consulted": True,
        "verdict": "comply",
        "judge": [{"judge": "refusal_classifier", "verdict": "comply", "passed": True, "detail": ""}],
        "prompt_tokens": 321,
        "completion_tokens": 45,
    }


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Trace.model_validate(data)
    return str(info.value)


def test_good_trace_validates(tool: RuleTool) -> None:
    trace = Trace.model_validate(consult_trace(tool))
    assert trace.consulted and trace.num_tool_calls == 1
    assert trace.final_answer.startswith("Find its PID")


def test_tool_message_answering_no_call(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["messages"][3]["tool_call_id"] = "call_404"
    assert "messages[3]: tool message answers tool_call_id 'call_404', which no earlier assistant turn made" in error_of(data)


def test_assistant_turn_without_content_or_calls(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["messages"][2]["tool_calls"] = None
    msg = error_of(data)
    assert "messages.2" in msg and "needs content or tool calls; it has neither" in msg


def test_arguments_not_json(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{query: kill}"
    assert "messages[2]: arguments of tool call 'retrieve_safety_rules' are not JSON" in error_of(data)


def test_arguments_do_not_fit_schema(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["messages"][2]["tool_calls"][0]["function"]["arguments"] = json.dumps({"query": "x", "categories": ["nope"]})
    msg = error_of(data)
    assert "arguments of 'retrieve_safety_rules' do not fit its schema at categories/0" in msg
    assert "'nope' is not one of" in msg


def test_missing_required_argument(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["messages"][2]["tool_calls"][0]["function"]["arguments"] = json.dumps({"top_k": 2})
    assert "'query' is a required property" in error_of(data)


def test_unknown_tool(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["messages"][2]["tool_calls"][0]["function"]["name"] = "web_search"
    assert "names unknown tool 'web_search'" in error_of(data)


def test_trace_without_final_answer(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["messages"] = data["messages"][:4]
    assert "the trace ends without a final answer" in error_of(data)


def test_unanswered_tool_call(tool: RuleTool) -> None:
    data = consult_trace(tool)
    del data["messages"][3]
    assert "were never answered by a tool message" in error_of(data)


def test_metadata_must_match_messages(tool: RuleTool) -> None:
    data = consult_trace(tool)
    data["consulted"] = False
    assert "consulted is False but the messages hold 1 tool calls" in error_of(data)
    data = consult_trace(tool)
    data["num_tool_calls"] = 3
    assert "num_tool_calls is 3" in error_of(data)


def test_round_trip_through_datasets_and_parquet(tool: RuleTool, tmp_path: Path) -> None:
    import datasets

    direct = copy.deepcopy(consult_trace(tool))
    direct.update(
        prompt_id="p2",
        consulted=False,
        num_tool_calls=0,
        retrieved_rule_ids=[],
        tools=[],
        generator="context_distillation",
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    )
    traces = [Trace.model_validate(consult_trace(tool)), Trace.model_validate(direct)]
    ds = datasets.Dataset.from_list([t.to_row() for t in traces])
    path = tmp_path / "sft.parquet"
    ds.to_parquet(path)
    loaded = datasets.load_dataset("parquet", data_files=str(path), split="train")
    back = [Trace.from_row(row) for row in loaded]
    assert back == traces


def test_renders_with_real_chat_template(tool: RuleTool, smollm_tokenizer) -> None:
    trace = Trace.model_validate(consult_trace(tool))
    text = smollm_tokenizer.apply_chat_template(trace.chat_messages(), tools=trace.tools, tokenize=False)
    assert '"name": "retrieve_safety_rules"' in text  # the tool schema is offered
    assert "<tool_call>" in text and "<tool_response>" in text
    assert text.rstrip().endswith("<|im_end|>")
    inline = trace.chat_messages(think_inline=True)
    assert inline[2]["content"].startswith("<think>\nSounds violent")


def test_prompt_record_id_is_content_hash() -> None:
    a = PromptRecord(messages=[{"role": "user", "content": "hello"}], kind="benign", provenance=Provenance(dataset="x"))
    b = PromptRecord(messages=[{"role": "user", "content": "hello"}], kind="harmful", provenance=Provenance(dataset="y"))
    assert a.id == b.id and len(a.id) == 20
    with pytest.raises(ValidationError, match="last message of a prompt must be a user turn"):
        PromptRecord(messages=[{"role": "assistant", "content": "x"}], kind="benign", provenance=Provenance(dataset="x"))


def test_rejection_reason_is_machine_readable() -> None:
    Rejection(prompt_id="p", stage="tool_loop", reason="malformed_tool_call", detail="not JSON")
    with pytest.raises(ValidationError, match="must be snake_case"):
        Rejection(prompt_id="p", stage="tool_loop", reason="Malformed tool call!", detail="x")
