"""The tool loop: batching across conversations, tool execution, and every way a conversation can fail."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.rulebook import load_ruleset
from ascl_data.rule_tool import RuleTool
from ascl_data.tool_loop import (
    BACKEND_ERROR,
    INVALID_ARGUMENTS,
    TOO_MANY_TOOL_CALLS,
    TRUNCATED,
    TURN_LIMIT,
    UNKNOWN_TOOL,
    LoopOutcome,
    run_conversation,
    run_tool_loop,
)
from ascl_data.toolcalls import EMPTY, MALFORMED
from helpers import ScriptedBackend

PARAMS = SamplingParams(temperature=0.0, max_tokens=64, seed=0)


def call(query: str = "bomb", name: str = "retrieve_safety_rules", **extra: Any) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": {"query": query, **extra}})}\n</tool_call>'


@pytest.fixture
def tool(small_ruleset_file: Path) -> RuleTool:
    return RuleTool(load_ruleset(small_ruleset_file))


def conv(user: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "be safe"}, {"role": "user", "content": user}]


def run(backend: Backend, tool: RuleTool, users: list[str], **kw: Any):
    return asyncio.run(
        run_tool_loop([conv(u) for u in users], backend, PARAMS, tools=[tool.schema()], rule_tool=tool, **kw)
    )


def test_consult_then_answer_and_direct_answer_batched(tool: RuleTool) -> None:
    backend = ScriptedBackend({
        "how do bombs work": [call("how explosives are built"), "I can't help build one, but here is the chemistry."],
        "bake bread": ["Mix flour, water, salt and yeast."],
    })
    consult, direct = run(backend, tool, ["how do bombs work", "bake bread"])
    assert consult.ok and direct.ok
    # Turn 1 batched both conversations; turn 2 only the one still open.
    assert [len(b) for b in backend.batches] == [2, 1]
    roles = [m["role"] for m in consult.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    call_msg, tool_msg = consult.messages[2], consult.messages[3]
    assert tool_msg["tool_call_id"] == call_msg["tool_calls"][0]["id"]
    assert json.loads(tool_msg["content"])["rules"][0]["id"] == "weapons/explosives"
    assert consult.retrieved_rule_ids[0] == "weapons/explosives" and consult.num_tool_calls == 1
    assert (consult.prompt_tokens, consult.completion_tokens, consult.turns) == (20, 10, 2)
    assert direct.num_tool_calls == 0 and direct.messages[-1]["content"] == "Mix flour, water, salt and yeast."
    # The tool message the teacher saw in turn 2 is the one in the trace.
    assert backend.batches[1][0][-1] == tool_msg


def test_reruns_give_identical_messages(tool: RuleTool) -> None:
    script = {"q": [call("q1"), call("q2"), "done"]}
    first = run(ScriptedBackend(script), tool, ["q"])[0]
    second = run(ScriptedBackend(script), tool, ["q"])[0]
    assert json.dumps(first.messages) == json.dumps(second.messages)
    ids = [c["id"] for m in first.messages for c in m.get("tool_calls") or []]
    assert len(set(ids)) == 2  # unique within the conversation


@pytest.mark.parametrize(
    ("replies", "reason", "needle"),
    [
        (['<tool_call>{"name": "retrieve_safety_rules", "arguments": {</tool_call>'], MALFORMED, "not JSON"),
        ([call(name="delete_everything")], UNKNOWN_TOOL, "unknown tool 'delete_everything'"),
        ([call(top_k=99)], INVALID_ARGUMENTS, "at top_k"),
        ([call(mode="fast")], INVALID_ARGUMENTS, "Additional properties"),
        (['<tool_call>{"name": "retrieve_safety_rules", "arguments": {}}</tool_call>'], INVALID_ARGUMENTS, "'query' is a required"),
        (["   "], EMPTY, "no content and no tool call"),
        (["<think>only thoughts</think>"], EMPTY, "no content"),
        ([Completion(error="HTTP 500 after 3 retries")], BACKEND_ERROR, "HTTP 500"),
        ([Completion(message={"role": "assistant", "content": "The answer is"}, finish_reason="length")], TRUNCATED, "max_tokens"),
        ([call("a"), call("b"), call("c"), call("d")], TURN_LIMIT, "after 3 turns"),
        ([call("a") + "\n" + call("b"), call("c") + "\n" + call("d")], TOO_MANY_TOOL_CALLS, "exceed the limit of 3"),
        ([Completion(raw_text='<tool_call>{"name": 1}</tool_call>')], MALFORMED, "has no 'name'"),
    ],
)
def test_failures_become_rejections(tool: RuleTool, replies: list, reason: str, needle: str) -> None:
    ok_backend = ["fine answer"]
    backend = ScriptedBackend({"bad": replies, "good": ok_backend})
    bad, good = run(backend, tool, ["bad", "good"], max_turns=3, max_tool_calls=3)
    assert good.ok, "one bad conversation must not sink the batch"
    assert not bad.ok and bad.reason == reason, (bad.reason, bad.detail)
    assert needle in bad.detail
    raw = json.loads(bad.raw())
    assert raw["messages"][:2] == conv("bad")  # the conversation so far is kept for audit
    # one conversation on its own (the build's path) ends the same way, with the same detail
    alone = asyncio.run(run_conversation(conv("bad"), ScriptedBackend({"bad": replies}), PARAMS, tools=[tool.schema()],
                                         rule_tool=tool, max_turns=3, max_tool_calls=3))
    assert (alone.reason, alone.detail, alone.messages) == (bad.reason, bad.detail, bad.messages)


def as_eval_reads(script: dict[str, list[str]], tool: RuleTool) -> list[LoopOutcome]:
    """The outcome of conversation "q" under `text_after_call="drop"`, batched and on its own (the build's path)."""
    return [run(ScriptedBackend(script), tool, ["q"], text_after_call="drop")[0],
            asyncio.run(run_conversation(conv("q"), ScriptedBackend(script), PARAMS, tools=[tool.schema()],
                                         rule_tool=tool, text_after_call="drop"))]


def test_text_after_a_call_rejects_a_trace_and_is_dropped_in_eval(tool: RuleTool) -> None:
    """An SFT'd 135M model writes on after its call (observed: README's train/eval block). A build rejects the turn;
    eval runs the call and drops the text, as a vLLM server with the hermes parser would, and keeps it for the record."""
    script = {"q": [call("explosives") + "\nI cannot help with that request.", "I can't help with making explosives."]}
    [build] = run(ScriptedBackend(script), tool, ["q"])
    assert build.reason == MALFORMED and "text after the last </tool_call>" in build.detail
    for outcome in as_eval_reads(script, tool):
        assert outcome.ok, (outcome.reason, outcome.detail)
        assert [m["role"] for m in outcome.messages] == ["system", "user", "assistant", "tool", "assistant"]
        assert outcome.messages[2]["content"] == "" and outcome.num_tool_calls == 1
        assert outcome.text_after_call == ["I cannot help with that request."]
        assert outcome.messages[-1]["content"] == "I can't help with making explosives."
    [clean] = run(ScriptedBackend({"q": [call("x"), "fine"]}), tool, ["q"], text_after_call="drop")
    assert clean.ok and clean.text_after_call == []


def test_an_echoed_tool_result_rejects_a_trace_and_is_the_answer_in_eval(tool: RuleTool) -> None:
    """After a few SFT steps a 135M model copies the tool result back instead of answering (observed: README's
    train/eval block). A build rejects that turn; eval reads it as a vLLM server with the hermes parser returns it to
    a client, as the answer's text, and flags it (`echoed_tool_result`) so it is counted."""
    echo = '<tool_response>{"rules": [{"id": "S1"}]}</tool_response>'
    script = {"q": [call("explosives"), echo]}
    [build] = run(ScriptedBackend(script), tool, ["q"])
    assert build.reason == MALFORMED and "<tool_response>" in build.detail
    for outcome in as_eval_reads(script, tool):
        assert outcome.ok, (outcome.reason, outcome.detail)
        assert outcome.messages[-1] == {"role": "assistant", "content": echo}
        assert outcome.echoed_tool_result and outcome.num_tool_calls == 1
    [clean] = run(ScriptedBackend({"q": [call("x"), "fine"]}), tool, ["q"], text_after_call="drop")
    assert clean.ok and not clean.echoed_tool_result


def test_raising_backend_rejects_open_conversations(tool: RuleTool) -> None:
    class Broken(ScriptedBackend):
        async def generate(self, conversations, tools, params):
            raise ConnectionError("server went away")

    outcomes = run(Broken({}), tool, ["a", "b"])
    assert [o.reason for o in outcomes] == [BACKEND_ERROR, BACKEND_ERROR]
    assert "ConnectionError: server went away" in outcomes[0].detail


def test_wrong_number_of_completions_is_a_backend_error(tool: RuleTool) -> None:
    class Short(ScriptedBackend):
        async def generate(self, conversations, tools, params):
            return []

    [outcome] = run(Short({}), tool, ["a"])
    assert outcome.reason == BACKEND_ERROR and "0 completions for 1" in outcome.detail


def test_tool_offered_without_handler_fails_before_any_call(tool: RuleTool) -> None:
    backend = ScriptedBackend({})
    extra = {"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}
    with pytest.raises(ValueError, match="calculator"):
        asyncio.run(run_tool_loop([conv("a")], backend, PARAMS, tools=[tool.schema(), extra], rule_tool=tool))
    assert backend.batches == []
