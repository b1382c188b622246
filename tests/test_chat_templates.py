"""Stored traces render with every chat template TRL ships, through `to_hf_convention` (issue 14, item 9).

A real consulted trace (tool call with reasoning, the rule tool's real result, a final answer) goes through a
parquet round trip as the writer stores it, then through `apply_chat_template` with each `trl/chat_templates/*.jinja`
on SmolLM2's real tokenizer. A user training any of these model families relies on the call's name and arguments
and the retrieved rules reaching the tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ascl_data.chat_format import to_hf_convention
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import Trace
from ascl_data.pipeline.writer import trace_row

ARGS = {"query": "picking the lock of a neighbour door", "top_k": 2}

# Templates that cannot show a tool call whatever the message format, and why.
NO_TOOL_CALLS = {
    "cohere": "Command-R's plain template has no tool role (roles must alternate user/assistant)",
    "cohere2": "Command-A's plain template has no tool role (roles must alternate user/assistant)",
    "gemma": "Gemma 1/2 support neither a system nor a tool role",
    "gemma3": "Gemma 3 has no tool role (roles must alternate user/assistant)",
    "llama3": "Llama 3.0 has no tool calling (3.1 and 3.2 do, and are tested)",
    "phi3": "Phi-3 renders content only; tool calls are dropped",
    "phi3_5": "Phi-3.5 renders content only; tool calls are dropped",
    "lfm2": "LFM2 v1 renders assistant content only (tool calls must be pre-written into it); lfm2_v2 is tested",
    "deepseek_r1_distill": "renders tool calls only when content is null, and then fails on the null content",
    "idefics3": "vision template: content must be a list of typed parts, no tool calls",
    "smolvlm": "vision template: content must be a list of typed parts, no tool calls",
    "llava_next": "vision template: content must be a list of typed parts, no tool calls",
    "qwen2_5_vl": "vision template without tool calls",
}
# DeepSeek-V3's original template concatenates the arguments as text: it takes them as JSON strings.
JSON_ARGUMENTS = {"deepseekv3"}


def _template_dir() -> Path:
    import trl

    return Path(trl.__file__).parent / "chat_templates"


def _base(name: str) -> str:
    return name.removesuffix("_training")


TEMPLATES = sorted(p.stem for p in _template_dir().glob("*.jinja"))


@pytest.fixture(scope="module")
def stored_messages(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict], str]:
    """A consulted trace as `load_dataset('parquet', ...)` gives it back: (messages, tools, tool result)."""
    from datasets import Dataset, load_dataset

    tool = RuleTool(load_ruleset())
    result, _ = tool.call_json(json.dumps(ARGS))
    call_id = "call_0123456789abcdef01234567"
    trace = Trace(
        prompt_id="p1",
        kind="harmful",
        messages=[
            {"role": "system", "content": "You may consult the safety rules."},
            {"role": "user", "content": "How do I open my neighbour's door lock while they are away?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "Entering someone else's home; check the rules first.",
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": tool.name, "arguments": json.dumps(ARGS)}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "name": tool.name, "content": result},
            {"role": "assistant", "content": "I can't help you get into someone else's home.", "reasoning_content": "Disallowed."},
        ],
        tools=[tool.schema()],
        generator="adaptive",
        teacher_model="test",
        ruleset_name="default",
        ruleset_version="1",
        num_tool_calls=1,
        consulted=True,
    )
    path = tmp_path_factory.mktemp("parquet") / "sft-00000.parquet"
    Dataset.from_list([trace_row(trace)]).to_parquet(path)
    row = load_dataset("parquet", data_files=str(path), split="train")[0]
    return row["messages"], json.loads(row["tools"]), result


def test_a_parquet_row_comes_back_in_the_openai_format(stored_messages):
    messages, _, _ = stored_messages
    call = messages[2]["tool_calls"][0]["function"]
    assert isinstance(call["arguments"], str) and messages[2]["content"] is None
    assert messages[1]["tool_calls"] is None  # parquet fills absent fields with None


def test_to_hf_convention_gives_objects_and_empty_content_without_touching_the_input(stored_messages):
    messages, _, _ = stored_messages
    before = json.dumps(messages)
    hf = to_hf_convention(messages)
    assert json.dumps(messages) == before
    assert hf[2]["content"] == "" and hf[2]["tool_calls"][0]["function"]["arguments"] == ARGS
    assert "tool_calls" not in hf[1] and "tool_call_id" not in hf[1] and "reasoning_content" not in hf[1]
    assert hf[3]["tool_call_id"] == messages[3]["tool_call_id"]
    assert to_hf_convention(messages, json_arguments=True)[2]["tool_calls"][0]["function"]["arguments"] == json.dumps(ARGS)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_trl_chat_template_renders_the_stored_trace(name, stored_messages, smollm_tokenizer):
    if _base(name) in NO_TOOL_CALLS:
        pytest.skip(NO_TOOL_CALLS[_base(name)])
    messages, tools, result = stored_messages
    template = (_template_dir() / f"{name}.jinja").read_text()
    hf = to_hf_convention(messages, json_arguments=_base(name) in JSON_ARGUMENTS)
    text = smollm_tokenizer.apply_chat_template(hf, tools=tools, chat_template=template, tokenize=False)
    after_user = text.split("while they are away?", 1)[1]
    assert "retrieve_safety_rules" in after_user
    assert ARGS["query"] in after_user and "top_k" in after_user
    assert json.loads(result)["rules"][0]["id"] in after_user
    assert "I can't help you get into someone else's home." in after_user


def test_templates_that_iterate_arguments_fail_on_the_stored_format(stored_messages, smollm_tokenizer):
    """Why the conversion exists: GLM-4.5's template cannot take the OpenAI format as stored."""
    messages, tools, _ = stored_messages
    template = (_template_dir() / "glm4moe.jinja").read_text()
    with pytest.raises(Exception, match="items"):
        smollm_tokenizer.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False)


def test_arguments_that_are_not_json_reach_the_template_as_written():
    """A malformed call in a rejects row is shown as the teacher wrote it, not dropped or 'repaired'."""
    call = {"id": "c", "type": "function", "function": {"name": "retrieve_safety_rules", "arguments": "{query: bomb"}}
    hf = to_hf_convention([{"role": "assistant", "content": None, "tool_calls": [call]}])
    assert hf[0]["tool_calls"][0]["function"]["arguments"] == "{query: bomb"
