"""Stored traces render with every chat template TRL ships (issue 14, item 9; issue 25, item 1).

A real consulted trace (tool call with reasoning, the rule tool's real result, a final answer) and a direct one go
through a parquet round trip as the writer stores them, then through `present_for_template` in the convention
`template_convention` finds for each `trl/chat_templates/*.jinja` (the `_training` variants included), then through
`apply_chat_template` on SmolLM2's real tokenizer. A user training any of these model families relies on the call's
name and arguments and the retrieved rules reaching the tokens, on the assistant-only mask holding exactly the
assistant turns, and on a template that cannot show a tool turn being named with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trl.chat_template_utils import has_generation_markers

from ascl_data.chat_format import ChatTemplateError, present_for_template, template_convention, to_hf_convention
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
# DeepSeek-V3's original template concatenates the arguments as text: it takes them as JSON strings (TRL's
# `deepseekv3_training` variant takes mappings).
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


def _present(messages: list[dict], convention: str) -> list[dict]:
    """`messages` as `prepare_sft_dataset` hands them to TRL: through `present_for_template` and back from Arrow."""
    from datasets import Dataset

    ds = Dataset.from_list([{"messages": messages}])
    return present_for_template(ds, convention)[0]["messages"]


def _direct(messages: list[dict]) -> list[dict]:
    """The same conversation answered without consulting: system, user, answer."""
    return [messages[0], messages[1], {**messages[4], "content": "The capital of Australia is Canberra."}]


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_trl_chat_template_takes_a_convention_or_says_why_not(name, smollm_tokenizer):
    template = (_template_dir() / f"{name}.jinja").read_text()
    if _base(name) in NO_TOOL_CALLS:
        with pytest.raises(ChatTemplateError) as err:
            template_convention(smollm_tokenizer, template, source="student")
        text = str(err.value)
        assert f"{name} (TRL's chat_templates/{name}.jinja" in text and "cannot show a tool-calling turn" in text
        assert "as mappings: " in text and "as JSON strings: " in text  # what went wrong each way
        return
    expected = "json" if name in JSON_ARGUMENTS else "mapping"
    assert template_convention(smollm_tokenizer, template) == expected


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_trl_chat_template_renders_a_consulted_and_a_direct_trace(name, stored_messages, smollm_tokenizer):
    if _base(name) in NO_TOOL_CALLS:
        pytest.skip(NO_TOOL_CALLS[_base(name)])
    messages, tools, result = stored_messages
    template = (_template_dir() / f"{name}.jinja").read_text()
    convention = template_convention(smollm_tokenizer, template)
    consulted = smollm_tokenizer.apply_chat_template(_present(messages, convention), tools=tools,
                                                     chat_template=template, tokenize=False)
    after_user = consulted.split("while they are away?", 1)[1]
    assert "retrieve_safety_rules" in after_user
    assert ARGS["query"] in after_user and "top_k" in after_user
    assert json.loads(result)["rules"][0]["id"] in after_user
    assert "I can't help you get into someone else's home." in after_user
    direct = smollm_tokenizer.apply_chat_template(_present(_direct(messages), convention), tools=tools,
                                                  chat_template=template, tokenize=False)
    after_user = direct.split("while they are away?", 1)[1]
    assert "The capital of Australia is Canberra." in after_user
    assert ARGS["query"] not in after_user and json.loads(result)["rules"][0]["id"] not in after_user


def _spans(mask: list[int], ids: list[int], tokenizer) -> list[str]:
    """The text of each run of masked tokens."""
    spans, run = [], []
    for token, m in zip(ids, mask):
        if m:
            run.append(token)
        elif run:
            spans.append(tokenizer.decode(run))
            run = []
    return spans + ([tokenizer.decode(run)] if run else [])


MASKED = [name for name in TEMPLATES if has_generation_markers((_template_dir() / f"{name}.jinja").read_text())]


@pytest.mark.parametrize("name", MASKED)
def test_the_assistant_mask_covers_exactly_the_assistant_turns(name, stored_messages, smollm_tokenizer):
    """TRL's `_training` variants (and the templates with `{% generation %}` of their own) for `assistant_only_loss`:
    each assistant turn (the call with its arguments, the answer) lies whole inside the template's generation spans,
    and nothing of the system, user or tool turns does; the tokenizer's mask, which TRL trains on, agrees."""
    from transformers.utils.chat_template_utils import render_jinja_template

    if _base(name) in NO_TOOL_CALLS:
        pytest.skip(NO_TOOL_CALLS[_base(name)])
    messages, tools, result = stored_messages
    rule_id = json.loads(result)["rules"][0]["id"]
    prompt = ("You may consult the safety rules.", "while they are away?")
    template = (_template_dir() / f"{name}.jinja").read_text()
    convention = template_convention(smollm_tokenizer, template)
    for conversation, turns, others in (
        (messages, [ARGS["query"], "I can't help you get into someone else's home."], (*prompt, rule_id)),
        (_direct(messages), ["The capital of Australia is Canberra."], prompt),
    ):
        presented = _present(conversation, convention)
        (text,), (indices,) = render_jinja_template([presented], tools=tools, chat_template=template,
                                                    return_assistant_tokens_mask=True)
        spans = [text[a:b] for a, b in indices]
        outside = "".join(text[b:a] for (_, b), (a, _) in zip([(0, 0), *indices], [*indices, (len(text), 0)]))
        for turn in turns:  # whole, in one span
            assert any(turn in span for span in spans), (turn, spans)
        for other in others:
            assert other in outside and not any(other in span for span in spans), (other, spans)
        out = smollm_tokenizer.apply_chat_template(
            presented, tools=tools, chat_template=template, tokenize=True, return_dict=True,
            return_assistant_tokens_mask=True)
        masked = "".join(_spans(out["assistant_masks"], out["input_ids"], smollm_tokenizer))
        assert all(turn in masked for turn in turns) and not any(other in masked for other in others)


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
