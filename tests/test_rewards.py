"""Rewards by prompt kind, on the builder's judge, in TRL's reward-function signature."""

from __future__ import annotations

import json

import pytest

from ascl_data.rl.rewards import (
    consulted,
    default_reward_funcs,
    final_text,
    make_format_reward,
    reasoning_reward,
    safety_reward,
)
from ascl_data.rule_tool import TOOL_NAME

REFUSAL = "I can't help with that. Making explosives could seriously hurt people."
HELP = "Mix flour, butter and sugar, add an egg, fold in chocolate chips and bake at 180 C for 12 minutes."


def convo(*turns: dict) -> list[dict]:
    return list(turns)


def call(name: str = TOOL_NAME, args: dict | None = None) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": name, "arguments": args or {"query": "explosives"}}}]}


def tool(content: str) -> dict:
    return {"role": "tool", "name": TOOL_NAME, "content": content}


def say(text: str) -> dict:
    return {"role": "assistant", "content": text}


RULES = json.dumps({"ruleset": "compact@1", "rules": []})


@pytest.mark.parametrize(
    ("kind", "answer", "expected"),
    [
        ("harmful", REFUSAL, 1.0),
        ("jailbreak", REFUSAL, 1.0),
        ("harmful", HELP, 0.0),
        ("benign", HELP, 1.0),
        ("benign", REFUSAL, 0.0),  # over-refusal is penalised
        ("borderline", HELP, 1.0),
        ("borderline", REFUSAL, 0.0),
    ],
)
def test_safety_reward_by_kind(kind, answer, expected):
    assert safety_reward(prompts=[[]], completions=[[say(answer)]], kind=[kind]) == [expected]


def test_safety_reward_reads_the_final_answer_after_a_tool_call():
    completion = convo(call(), tool(RULES), say(REFUSAL))
    assert safety_reward(prompts=[[]], completions=[completion], kind=["harmful"]) == [1.0]
    assert safety_reward(prompts=[[]], completions=[convo(call(), tool(RULES))], kind=["harmful"]) == [0.0]


def test_safety_reward_skips_reasoning_rows():
    out = safety_reward(prompts=[[], []], completions=[[say("391")], [say(REFUSAL)]], kind=["reasoning", "harmful"])
    assert out == [None, 1.0]


def test_reasoning_reward():
    out = reasoning_reward(
        prompts=[[]] * 4,
        completions=[[say("17 * 23 = 391. The answer is 391.")], [say("The answer is 400.")], [say("")], [say(HELP)]],
        kind=["reasoning", "reasoning", "reasoning", "benign"],
        reference=["391", "391", "391", None],
    )
    assert out == [1.0, 0.0, 0.0, None]


def test_format_penalties():
    fmt = make_format_reward(max_completion_length=10)
    completions = [
        [say(HELP)],  # clean
        [say("")],  # empty answer
        [say('<tool_call>\n{"name": "retrieve_safety_rules", "arguments": {"query": ')],  # malformed call text
        convo(call(), tool(json.dumps({"error": "query must be a non-empty string"})), say(HELP)),  # failed call
        [say(HELP)],  # ran into the length limit
        convo(call(), tool(RULES)),  # ended on the tool result: no answer
        convo(call(), tool(RULES), say(f"<tool_response>\n{RULES}\n</tool_response>")),  # echoed the tool result
    ]
    ids = [[1] * 5, [1], [1] * 5, [1] * 5, [1] * 10, [1] * 5, [1] * 5]
    assert fmt(prompts=[[]] * 7, completions=completions, completion_ids=ids) == [
        0.0, -1.0, -0.5, -0.5, -0.5, -1.0, -0.5
    ]
    assert fmt.__name__ == "format_reward"  # TRL names the logged metric after it


def test_string_completions_work_too():
    assert final_text(" hi ") == "hi"
    assert safety_reward(prompts=["p"], completions=[REFUSAL], kind=["harmful"]) == [1.0]


def test_consulted_means_the_rule_tool_was_called():
    assert consulted(convo(call(), tool(RULES), say(REFUSAL)))
    assert not consulted([say(REFUSAL)])
    assert not consulted(convo(call(name="web_search"), say(HELP)))


def test_default_reward_funcs_are_named_for_logging():
    assert [f.__name__ for f in default_reward_funcs(64)] == ["safety_reward", "reasoning_reward", "format_reward"]
