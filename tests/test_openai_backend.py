"""The `openai` backend without a model server: settings, secrets, Retry-After, backoff, and the retry loop against
the real fault proxy (at fault rate 1.0 it answers every request itself, so no model server is needed), and
against a port where nothing listens."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time

import pytest
from openai.types.chat import ChatCompletion

from ascl_data.backends import make_backend
from ascl_data.backends.base import SamplingParams
from ascl_data.backends.openai_backend import (
    OpenAIBackend,
    backoff_delay,
    message_from_choice,
    parse_retry_after,
    request_messages,
)
from ascl_data.errors import FatalError, InputError
from ascl_data.testing.fault_proxy import Answer, FaultConfig, FaultProxy, ScriptedServer, chat_answer
from ascl_data.testing.vllm_server import free_port

PARAMS = SamplingParams(max_tokens=8, temperature=0.0)
CONV = [{"role": "user", "content": "hello"}]


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


def _backend(url: str, **kw) -> OpenAIBackend:
    settings = dict(model="m", base_urls=[url], backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5.0)
    settings.update(kw)
    return OpenAIBackend(**settings)


# --------------------------------------------------------------------------- settings and secrets


def test_bad_settings_name_the_field():
    with pytest.raises(InputError) as err:
        OpenAIBackend(model="m", base_urls=["localhost:8000"], max_concurrency=0)
    text = str(err.value)
    assert "base_urls" in text and "not an http(s) URL" in text
    assert "max_concurrency" in text


def test_unknown_setting_is_rejected():
    with pytest.raises(InputError, match="max_retry"):
        OpenAIBackend(model="m", max_retry=3)


def test_api_key_comes_from_the_named_env_var_and_never_shows(monkeypatch):
    monkeypatch.setenv("ASCL_TEST_KEY", "sk-secret-123456")
    backend = make_backend("openai", model="m", base_url="http://127.0.0.1:9/v1", api_key_env="ASCL_TEST_KEY")
    assert backend._replicas[0].client.api_key == "sk-secret-123456"
    assert "sk-secret" not in repr(backend)
    assert "sk-secret" not in repr(backend.__dict__)
    assert "sk-secret" not in backend.settings.model_dump_json()


def test_missing_env_var_and_literal_key_are_errors(monkeypatch):
    monkeypatch.delenv("ASCL_NOT_SET", raising=False)
    with pytest.raises(InputError, match="ASCL_NOT_SET is not set"):
        OpenAIBackend(model="m", api_key_env="ASCL_NOT_SET")
    with pytest.raises(InputError, match="never put the key itself"):
        OpenAIBackend(model="m", api_key_env="sk-abcdef")


def test_local_servers_get_the_empty_key():
    assert OpenAIBackend(model="m")._replicas[0].client.api_key == "EMPTY"


def test_a_plain_http_replica_skips_the_certificate_store_but_never_trusts_an_unverified_certificate():
    """The client's start-up is paid before a build's first request: a plain-http replica does not load the CA
    store (~0.2 s), and its TLS context (used only if the server redirected to https) still verifies, so it trusts
    nothing rather than anything. An https replica keeps the default, verifying store."""
    plain = OpenAIBackend(model="m", base_url="http://127.0.0.1:9/v1")._replicas[0].client
    tls = OpenAIBackend(model="m", base_url="https://example.invalid/v1")._replicas[0].client
    plain_ctx = plain._client._transport._pool._ssl_context
    tls_ctx = tls._client._transport._pool._ssl_context
    assert plain_ctx.verify_mode == ssl.CERT_REQUIRED and plain_ctx.check_hostname
    assert plain_ctx.cert_store_stats()["x509_ca"] == 0
    assert tls_ctx.verify_mode == ssl.CERT_REQUIRED and tls_ctx.cert_store_stats()["x509_ca"] > 0
    assert plain.timeout == tls.timeout == 120.0  # the backend's deadline either way


# --------------------------------------------------------------------------- pure helpers


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 7))
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(7.0, abs=1.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-4"}) is None
    assert parse_retry_after({}) is None


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(1)
    delays = [backoff_delay(a, 0.5, 8.0, rng) for a in range(8)]
    for a, d in enumerate(delays):
        step = min(8.0, 0.5 * 2**a)
        assert step / 2 <= d <= step
    assert max(delays) <= 8.0
    assert len({round(backoff_delay(3, 0.5, 8.0, rng), 6) for _ in range(20)}) > 1  # jittered


def test_request_messages_drop_none_and_reasoning():
    conv = [
        {"role": "user", "content": "q", "tool_calls": None, "tool_call_id": None, "name": None},
        {"role": "assistant", "content": None, "reasoning_content": "hmm", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    ]
    out = request_messages(conv, send_reasoning=False)
    assert out[0] == {"role": "user", "content": "q"}
    assert "reasoning_content" not in out[1] and out[1]["content"] == ""
    assert request_messages(conv, send_reasoning=True)[1]["reasoning_content"] == "hmm"


def _choice(message: dict) -> object:
    # A response body as a server sends it, parsed by the openai client's own types.
    return ChatCompletion.model_validate(
        {
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", **message}}],
        }
    ).choices[0]  # fmt: skip


def test_native_tool_calls_and_reasoning_are_read():
    message, raw = message_from_choice(
        _choice(
            {
                "content": None,
                "reasoning_content": "check the rules",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"query": "x"}'}}],
            }
        )
    )
    assert message["reasoning_content"] == "check the rules"
    assert message["tool_calls"][0]["id"] == "call_1"
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"query": "x"}'}


def test_tool_calls_in_content_are_parsed_when_the_server_does_not():
    text = 'Let me check.\n<tool_call>\n{"name": "f", "arguments": {"query": "x"}}\n</tool_call>'
    message, raw = message_from_choice(_choice({"content": text}))
    assert raw == text
    assert message["content"] == "Let me check."
    assert message["tool_calls"][0]["function"]["name"] == "f"
    assert message["tool_calls"][0]["function"]["arguments"] == '{"query": "x"}'


def test_malformed_tool_call_text_comes_back_as_raw_text():
    message, raw = message_from_choice(_choice({"content": "<tool_call>{not json</tool_call>"}))
    assert message is None and raw == "<tool_call>{not json</tool_call>"


# --------------------------------------------------------------------------- retries against a real HTTP peer


def test_500s_are_retried_then_reported_without_raising():
    with FaultProxy("http://127.0.0.1:9", FaultConfig(rate_500=1.0)) as proxy:  # never forwards
        backend = _backend(proxy.base_url, max_retries=3)
        out = asyncio.run(backend.generate([CONV, CONV + [{"role": "user", "content": "again"}]], None, PARAMS))
    assert [c.error.split(":")[0] for c in out] == ["server_error", "server_error"]
    assert "HTTP 500" in out[0].error and "after 4 attempts" in out[0].error
    per_body = proxy.attempts()
    assert len(per_body) == 2 and all(len(v) == 4 for v in per_body.values())
    assert backend.stats.retries == 6


def test_retry_after_is_honoured():
    with FaultProxy("http://127.0.0.1:9", FaultConfig(rate_429=1.0, retry_after_s=0.4)) as proxy:
        backend = _backend(proxy.base_url, max_retries=2)
        out = asyncio.run(backend.generate([CONV], None, PARAMS))
    assert out[0].error.startswith("rate_limited: HTTP 429")
    (events,) = proxy.attempts().values()
    assert len(events) == 3
    gaps = [b.t - a.t for a, b in zip(events, events[1:])]
    assert all(g >= 0.4 for g in gaps), gaps  # backoff alone would wait <= 0.05 s


def test_connection_refused_is_retried_and_reported():
    backend = _backend(_dead_url(), max_retries=2)
    out = asyncio.run(backend.generate([CONV], None, PARAMS))
    assert out[0].error.startswith("connection_error") and "after 3 attempts" in out[0].error
    assert out[0].message is None


def test_a_hung_request_times_out_and_is_retried():
    with FaultProxy("http://127.0.0.1:9", FaultConfig(rate_hang=1.0, hang_s=5.0)) as proxy:
        backend = _backend(proxy.base_url, max_retries=1, timeout_s=0.3)
        started = time.monotonic()
        out = asyncio.run(backend.generate([CONV], None, PARAMS))
        elapsed = time.monotonic() - started
    assert out[0].error.startswith("timeout") and "after 2 attempts" in out[0].error
    assert len(next(iter(proxy.attempts().values()))) == 2
    assert elapsed < 3.0


def test_concurrency_is_bounded():
    with FaultProxy("http://127.0.0.1:9", FaultConfig(rate_hang=1.0, hang_s=0.3)) as proxy:
        backend = _backend(proxy.base_url, max_retries=0, max_concurrency=3, timeout_s=5.0)
        convs = [[{"role": "user", "content": f"q{i}"}] for i in range(10)]
        out = asyncio.run(backend.generate(convs, None, PARAMS))
    assert len(out) == 10 and all(c.error for c in out)
    assert proxy.max_active == 3


def test_a_dead_replica_is_failed_over():
    with FaultProxy("http://127.0.0.1:9", FaultConfig(rate_429=1.0, retry_after_s=0)) as proxy:
        # replica 1: nothing listens; replica 2 answers (429s: alive, but busy). Requests that hit the dead
        # one are retried on the live one, so every conversation ends with the live replica's answer.
        backend = _backend(_dead_url(), max_retries=2, replica_cooldown_s=60, base_urls=[_dead_url(), proxy.base_url])
        convs = [[{"role": "user", "content": f"q{i}"}] for i in range(6)]
        out = asyncio.run(backend.generate(convs, None, PARAMS))
    assert all(c.error.startswith("rate_limited") for c in out), [c.error for c in out]
    # every request's last attempts went to the live replica: 6 conversations x at least 2 attempts there
    assert sum(len(v) for v in proxy.attempts().values()) >= 12


def test_a_second_event_loop_works():
    with FaultProxy("http://127.0.0.1:9", FaultConfig(rate_500=1.0)) as proxy:
        backend = _backend(proxy.base_url, max_retries=0)
        first = asyncio.run(backend.generate([CONV], None, PARAMS))
        second = asyncio.run(backend.generate([CONV], None, PARAMS))
    assert first[0].error.startswith("server_error") and second[0].error.startswith("server_error")


# --------------------------------------------------------------------------- a broken or hostile server


KEY = "sk-proj-ECHOED-KEY-0123456789abcdef"


def _by_content(answers: dict[str, Answer], default: Answer | None = None):
    """A script that answers by the last user message's content."""

    def script(path: str, headers: dict[str, str], body: dict) -> Answer:
        return answers.get(body["messages"][-1]["content"], default or chat_answer("fine"))

    return script


def _conv(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_timeout_is_a_deadline_for_the_whole_request():
    # 1 byte/s: the client's per-read timeout would never fire; the request must still end at timeout_s
    slow = Answer(200, chat_answer("slow").payload(), trickle_s=1.0)
    with ScriptedServer(lambda *a: slow) as server:
        backend = _backend(server.base_url, max_retries=1, timeout_s=1.0)
        started = time.monotonic()
        out = asyncio.run(backend.generate([CONV], None, PARAMS))
        elapsed = time.monotonic() - started
    assert out[0].error.startswith("timeout") and "after 2 attempts" in out[0].error
    assert elapsed < 4.0, elapsed  # two attempts of 1 s plus backoff; the body alone takes > 150 s


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refusal_no_retry_can_fix_stops_at_once_naming_url_and_model(monkeypatch, status):
    monkeypatch.setenv("ASCL_TEST_KEY", KEY)
    refuse = Answer(status, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    with ScriptedServer(lambda *a: refuse) as server:
        backend = _backend(server.base_url, api_key_env="ASCL_TEST_KEY", max_retries=5, max_concurrency=1)
        convs = [_conv(f"q{i}") for i in range(20)]
        with pytest.raises(FatalError) as err:
            asyncio.run(backend.generate(convs, None, PARAMS))
    text = str(err.value)
    assert server.base_url in text and "'m'" in text and f"HTTP {status}" in text
    assert KEY not in text and "[REDACTED]" in text
    assert len(server.chat_requests()) == 1  # no retries, and the rest of the batch was never sent


def test_a_refused_key_stops_the_tool_loop_instead_of_rejecting_every_prompt(monkeypatch):
    from ascl_data.rule_tool import RuleTool
    from ascl_data.rulebook import load_ruleset
    from ascl_data.tool_loop import run_tool_loop

    monkeypatch.setenv("ASCL_TEST_KEY", KEY)
    with ScriptedServer(lambda *a: Answer(401, {"error": {"message": "bad key"}})) as server:
        backend = _backend(server.base_url, api_key_env="ASCL_TEST_KEY")
        with pytest.raises(FatalError, match="refused"):
            rule_tool = RuleTool(load_ruleset("default"))
            asyncio.run(run_tool_loop([CONV, CONV], backend, PARAMS, tools=None, rule_tool=rule_tool))


def test_a_too_long_prompt_is_rejected_before_any_request_and_its_batch_mates_are_answered():
    huge = "word " * 40_000  # 200 KB: ~40k tokens for a 1k-token context
    with ScriptedServer(_by_content({}), max_model_len=1000) as server:
        backend = _backend(server.base_url)
        out = asyncio.run(backend.generate([_conv("short"), _conv(huge), _conv("also short")], None, PARAMS))
    assert out[0].message["content"] == "fine" and out[2].message["content"] == "fine"
    assert out[1].error_reason == "prompt_too_long" and "1000 tokens" in out[1].error
    assert [b["messages"][-1]["content"] for b in server.chat_requests()] == ["short", "also short"]


def test_the_context_setting_and_a_real_tokenizer_count_the_prompt():
    from ascl_data.embedded import embedded_model_path

    with ScriptedServer(_by_content({})) as server:  # no max_model_len: the guard is off
        free = asyncio.run(_backend(server.base_url).generate([_conv("word " * 5000)], None, PARAMS))
        exact = _backend(server.base_url, max_model_len=500, tokenizer=str(embedded_model_path()))
        fits, too_long = asyncio.run(exact.generate([_conv("word " * 400), _conv("word " * 600)], None, PARAMS))
    assert free[0].message is not None
    assert fits.message is not None, fits.error  # 400 words are ~430 tokens with the template, + 8 max_tokens
    assert too_long.error_reason == "prompt_too_long" and "estimated" not in too_long.error


def test_a_page_instead_of_a_completion_is_a_clear_error_for_that_item_only():
    html = Answer(200, "<html><body>Welcome to nginx</body></html>", (("content-type", "text/html"),))
    with ScriptedServer(_by_content({"bad": html})) as server:
        out = asyncio.run(_backend(server.base_url).generate([_conv("bad"), _conv("good")], None, PARAMS))
    assert out[0].error.startswith("invalid_response") and "not a chat completion" in out[0].error
    assert "AttributeError" not in out[0].error and "nginx" in out[0].error
    assert out[1].message["content"] == "fine"


def test_nothing_that_comes_back_carries_the_key(monkeypatch):
    monkeypatch.setenv("ASCL_TEST_KEY", KEY)
    answers = {
        "500": Answer(500, {"error": {"message": f"upstream failed for key {KEY}"}}),
        "echo": chat_answer(f"your key is {KEY} and Bearer {KEY}"),
        "html": Answer(200, f"<html>key={KEY}</html>", (("content-type", "text/html"),)),
    }
    with ScriptedServer(_by_content(answers)) as server:
        backend = _backend(server.base_url, api_key_env="ASCL_TEST_KEY", max_retries=1)
        out = asyncio.run(backend.generate([_conv(k) for k in answers], None, PARAMS))
    assert "HTTP 500" in out[0].error and "[REDACTED]" in out[0].error
    assert "[REDACTED]" in out[1].message["content"] and "[REDACTED]" in out[1].raw_text
    assert out[2].error.startswith("invalid_response")
    assert not any(KEY in c.model_dump_json() for c in out)


@pytest.mark.parametrize(
    "body",
    [
        {"choices": [{"message": "hi"}]},
        {"choices": ["x"]},
        {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "function": None}]}}]},
        {"choices": [{"message": {"role": "assistant", "content": 5}}]},
        {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": "nope"}}]},
        {"choices": None},
        [1, 2],
    ],
)
def test_a_garbled_completion_is_an_invalid_response_that_says_what_came(body):
    with ScriptedServer(_by_content({"bad": Answer(200, json.dumps(body))})) as server:
        out = asyncio.run(_backend(server.base_url).generate([_conv("bad"), _conv("good")], None, PARAMS))
    assert out[0].error.startswith("invalid_response: the server's answer is not a")
    assert "Error" not in out[0].error  # what was wrong with the answer, not a Python exception's text
    assert out[1].message["content"] == "fine"
def test_the_request_body_is_what_the_server_expects():
    """The backend posts plain JSON (no client-side transform): a loopback server sees the model, messages,
    sampling, tools, the forced first tool call and the recipe's extra_body keys, and its answer is parsed."""
    seen: list[dict] = []
    answer = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                  "role": "assistant", "content": None, "tool_calls": [{"id": "call_7", "type": "function",
                  "function": {"name": "retrieve_safety_rules", "arguments": "{\"query\": \"locks\"}"}}]}}],
              "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}  # fmt: skip

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:")[1].split("\r\n")[0])
        seen.append(json.loads(await reader.readexactly(length)))
        data = json.dumps(answer).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     + f"content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode() + data)  # fmt: skip
        await writer.drain()
        writer.close()

    tools = [{"type": "function", "function": {"name": "retrieve_safety_rules", "description": "d",
              "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]  # fmt: skip

    async def main() -> list:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        backend = _backend(url, force_first_tool_call=True, extra_body={"top_k": 20})
        async with server:
            out = await backend.generate([CONV], tools, SamplingParams(max_tokens=8, temperature=0.0, seed=3))
            await backend.aclose()
        return out

    (completion,) = asyncio.run(main())
    (body,) = seen
    assert body["model"] == "m" and body["messages"] == CONV and body["tools"] == tools
    assert (body["max_tokens"], body["temperature"], body["seed"], body["top_k"]) == (8, 0.0, 3, 20)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "retrieve_safety_rules"}}
    assert completion.error is None and completion.message["tool_calls"][0]["id"] == "call_7"
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 5)
