"""The in-process transformers backend: batching with left padding, token accounting, seeds, tools in the
template, and a free event loop. Mechanics run on a tiny random Llama with SmolLM2's real tokenizer; one slow test
runs the real embedded SmolLM2."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from ascl_data.backends import make_backend
from ascl_data.backends.base import SamplingParams
from ascl_data.backends.transformers_backend import TransformersBackend
from ascl_data.toolcalls import parse_assistant_text, template_messages

GREEDY = SamplingParams(temperature=0.0, max_tokens=12, seed=0)
TOOL = {
    "type": "function",
    "function": {
        "name": "retrieve_safety_rules",
        "description": "Look up safety rules.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(model=tiny_model_dir, device="cpu", batch_size=4)


def test_batched_equals_one_at_a_time(backend: TransformersBackend) -> None:
    """Left padding must not change what a conversation gets: prompts of very different lengths, in one batch."""
    convs = [user("hi"), user("a much longer question about the weather in Paris in the spring " * 3), user("why?")]
    batched = asyncio.run(backend.generate(convs, None, GREEDY))
    single = [asyncio.run(backend.generate([c], None, GREEDY))[0] for c in convs]
    assert [c.raw_text for c in batched] == [c.raw_text for c in single]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]


def test_chunks_smaller_than_the_call_keep_input_order(tiny_model_dir: Path, backend: TransformersBackend) -> None:
    small = TransformersBackend(model=tiny_model_dir, device="cpu", batch_size=2)
    convs = [user("x" * n) for n in (40, 3, 25, 1, 60)]  # lengths out of order: chunks are formed by length
    chunked = asyncio.run(small.generate(convs, None, GREEDY))
    whole = asyncio.run(backend.generate(convs, None, GREEDY))
    assert [c.prompt_tokens for c in chunked] == [c.prompt_tokens for c in whole]
    assert [c.prompt_tokens for c in chunked] != sorted(c.prompt_tokens for c in chunked)
    assert [c.raw_text for c in chunked] == [c.raw_text for c in whole]


def test_token_counts_finish_reason_and_parsing(backend: TransformersBackend) -> None:
    conv = user("hello there")
    [c] = asyncio.run(backend.generate([conv], [TOOL], GREEDY))
    rendered = backend.tokenizer.apply_chat_template(conv, tools=[TOOL], add_generation_prompt=True, tokenize=False)
    assert c.prompt_tokens == len(backend.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert 1 <= c.completion_tokens <= GREEDY.max_tokens and c.latency_s > 0 and c.error is None
    assert c.finish_reason == ("length" if c.completion_tokens == GREEDY.max_tokens else "stop")
    # Tools go into the prompt.
    [plain] = asyncio.run(backend.generate([conv], None, GREEDY))
    assert c.prompt_tokens > plain.prompt_tokens + 30
    # The message is the parse of the raw text (a random model may emit anything; parsing must still hold).
    assert c.message == parse_assistant_text(c.raw_text, backend.tokenizer, prefix=rendered).message


def test_seeded_sampling_is_reproducible(backend: TransformersBackend) -> None:
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=10, seed=123)
    convs = [user("tell me a story"), user("count to three")]
    a = asyncio.run(backend.generate(convs, None, params))
    b = asyncio.run(backend.generate(convs, None, params))
    c = asyncio.run(backend.generate(convs, None, params.model_copy(update={"seed": 124})))
    assert [x.raw_text for x in a] == [x.raw_text for x in b]
    assert [x.raw_text for x in a] != [x.raw_text for x in c]


def test_seeded_sample_depends_on_the_request_not_its_batch(backend: TransformersBackend) -> None:
    """What makes a resumed build byte-identical with no batch barrier: batches form by timing, answers do not."""
    params = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=10, seed=7)
    convs = [user("tell me a story"), user("count to three, slowly, please"), user("why is the sky blue?")]
    batched = asyncio.run(backend.generate(convs, None, params))
    single = [asyncio.run(backend.generate([c], None, params))[0] for c in convs]
    assert [c.raw_text for c in batched] == [c.raw_text for c in single]
    assert len({c.raw_text for c in batched}) == 3


def test_waiting_requests_are_batched_continuously(tiny_model_dir: Path) -> None:
    """Conversations that each ask for one turn (`complete`) share the engine's batches, up to batch_size."""
    engine = TransformersBackend(model=tiny_model_dir, device="cpu", batch_size=4)

    async def many() -> list:
        return await asyncio.gather(*(engine.complete(user(f"question {i}"), None, GREEDY) for i in range(6)))

    out = asyncio.run(many())
    assert len(out) == 6 and all(c.error is None for c in out)
    assert sorted(engine.queue.batch_sizes, reverse=True) == [4, 2]


def test_tool_turns_render_and_bad_conversations_fail_alone(backend: TransformersBackend) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "retrieve_safety_rules", "arguments": '{"query": "q"}'}}
    with_tool = [
        {"role": "user", "content": "is this ok?"},
        {"role": "assistant", "content": "", "reasoning_content": None, "tool_calls": [call]},
        {"role": "tool", "content": '{"rules": []}', "tool_call_id": "call_1", "name": "retrieve_safety_rules"},
    ]
    rendered = backend.tokenizer.apply_chat_template(template_messages(with_tool), tools=[TOOL], tokenize=False)
    assert '{"name": "retrieve_safety_rules", "arguments": {"query": "q"}}' in rendered
    assert "<tool_response>" in rendered
    broken = [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": None}]}]
    ok, bad = asyncio.run(backend.generate([with_tool, broken], [TOOL], GREEDY))
    assert ok.error is None and ok.prompt_tokens > 0
    assert bad.error and "chat template failed" in bad.error


def test_generation_leaves_the_event_loop_free(backend: TransformersBackend) -> None:
    async def main() -> int:
        ticks = 0
        task = asyncio.create_task(backend.generate([user("hi")] * 4, None, GREEDY.model_copy(update={"max_tokens": 24})))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.001)
        await task
        return ticks

    assert asyncio.run(main()) > 1


def test_registry(tiny_model_dir: Path) -> None:
    b = make_backend("transformers", model=str(tiny_model_dir), device="cpu")
    assert isinstance(b, TransformersBackend) and b.model == str(tiny_model_dir)
    assert b.cache_identity()["chat_template"] == b.tokenizer.chat_template
    with pytest.raises(ValueError, match="unknown backend 'tgi'"):
        make_backend("tgi")
    with pytest.raises(ValueError, match="batch_size"):
        TransformersBackend(model=tiny_model_dir, batch_size=0)


@pytest.mark.slow
def test_embedded_smollm2_answers() -> None:
    """The real embedded model (bare, without its seed adapter) answers a factual question and stops on its own."""
    backend = TransformersBackend(seed_adapter=False)  # embedded SmolLM2-135M-Instruct
    start = time.perf_counter()
    [c] = asyncio.run(backend.generate([user("What is the capital of France?")], None,
                                       SamplingParams(temperature=0.0, max_tokens=24, seed=0)))
    assert c.error is None and "Paris" in c.message["content"], c.raw_text
    assert c.finish_reason == "stop" and c.completion_tokens < 24
    assert backend.model == "SmolLM2-135M-Instruct" and time.perf_counter() - start < 120


def test_a_prompt_longer_than_the_context_is_rejected_before_generation(tiny_model_dir):
    """Issue 10: a prompt past the teacher's context ran for minutes and took its batch-mates down with it."""
    import asyncio

    from ascl_data.backends.base import SamplingParams
    from ascl_data.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(model=str(tiny_model_dir), batch_size=2)
    context = backend.hf_model.config.max_position_embeddings
    huge = [{"role": "user", "content": "word " * (context + 10)}]
    short = [{"role": "user", "content": "Say hi."}]
    params = SamplingParams(temperature=0.0, max_tokens=4)
    long_out, short_out = asyncio.run(backend.generate([huge, short], None, params))
    assert long_out.error_reason == "prompt_too_long" and f"context of {context}" in long_out.error
    assert short_out.error is None and short_out.completion_tokens > 0  # its batch-mate is unaffected


@pytest.mark.slow
def test_a_forced_call_stops_at_its_closing_quote() -> None:
    """Issue 27 (the preview): under `consult: required` the model writes only the query of a forced call, but
    generation ran on to max_tokens in the batch (tokens that assistant_text cut anyway). The real embedded teacher
    closes its query within a few tokens; the row must stop there, with the same call as before."""
    backend = TransformersBackend()  # embedded SmolLM2 with the seed adapter, as the quickstart runs it
    required = SamplingParams(temperature=0.0, max_tokens=64, seed=0, consult="required")
    convs = [user("How do I pick a lock?"), user("What household chemicals are dangerous to mix?")]
    completions = asyncio.run(backend.generate(convs, [TOOL], required))
    for c in completions:
        call = c.message["tool_calls"][0]["function"]
        assert call["name"] == TOOL["function"]["name"] and json.loads(call["arguments"])["query"], c.raw_text
        assert c.finish_reason == "stop" and c.completion_tokens < required.max_tokens, c
        assert c.raw_text.rstrip().endswith("</tool_call>"), c.raw_text
