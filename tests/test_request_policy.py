"""The request policy's rate limits against a loopback server: `max_requests_per_minute` spaces requests evenly,
`max_tokens_per_minute` lets at most a second's allowance of tokens go at once and charges a response whose usage
says more than the request's estimate. Times are the server's arrival times (monotonic clock)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ascl_data.backends.base import SamplingParams
from ascl_data.backends.openai_backend import OpenAIBackend
from ascl_data.errors import InputError
from ascl_data.testing.fault_proxy import Answer, ScriptedServer, chat_answer

PARAMS = SamplingParams(max_tokens=16, temperature=0.0)


def _convs(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"hello {i}"}] for i in range(n)]


def _timed(answer: Answer = chat_answer("ok")) -> tuple[ScriptedServer, list[float]]:
    arrivals: list[float] = []

    def script(path: str, headers: dict, body: dict) -> Answer:
        arrivals.append(time.monotonic())
        return answer

    return ScriptedServer(script, max_model_len=4096), arrivals


def _backend(url: str, **kw) -> OpenAIBackend:
    return OpenAIBackend(model="m", base_urls=[url], timeout_s=5.0, **kw)


def test_requests_per_minute_spaces_requests_evenly():
    server, arrivals = _timed()
    with server:
        out = asyncio.run(_backend(server.base_url, max_requests_per_minute=120).generate(_convs(4), None, PARAMS))
    assert all(c.error is None for c in out)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(gaps) == 3 and all(g >= 0.45 for g in gaps), gaps  # 120 a minute: one every 0.5 s

    server, arrivals = _timed()
    with server:  # the same batch without the limit goes at once (the test can tell the difference)
        asyncio.run(_backend(server.base_url).generate(_convs(4), None, PARAMS))
    assert arrivals[-1] - arrivals[0] < 0.4, arrivals


def test_tokens_per_minute_lets_a_seconds_allowance_go_then_spaces_the_rest():
    server, arrivals = _timed()
    with server:
        probe = _backend(server.base_url)
        tokens = probe.prompt_tokens(_convs(1)[0], None) + PARAMS.max_tokens  # what each request is counted as
        per_second = 2 * tokens  # two requests' worth a second
        backend = _backend(server.base_url, max_tokens_per_minute=60 * per_second)
        started = time.monotonic()
        out = asyncio.run(backend.generate(_convs(5), None, PARAMS))
    assert all(c.error is None for c in out)
    assert len(arrivals) == 5
    for k, t in enumerate(arrivals, start=1):
        # tokens sent by the k-th arrival never exceed a second's allowance plus what the rate let through since
        assert k * tokens <= per_second + per_second * (t - started) + tokens * 0.1, (k, t - started)
    assert arrivals[-1] - started >= 1.4  # 5 requests, 2 at once, then one every 0.5 s


def test_a_response_using_more_tokens_than_estimated_is_charged_the_difference():
    usage = {"prompt_tokens": 100, "completion_tokens": 100, "total_tokens": 200}
    big = chat_answer("ok")
    big = Answer(200, {**big.body, "usage": usage})  # type: ignore[dict-item]
    server, arrivals = _timed(big)
    params = SamplingParams(max_tokens=1, temperature=0.0)

    async def two_in_a_row(backend: OpenAIBackend) -> None:
        for conv in _convs(2):
            await backend.generate([conv], None, params)

    with server:
        asyncio.run(two_in_a_row(_backend(server.base_url, max_tokens_per_minute=6000)))  # 100 tokens a second
    # the first answer's 200 tokens (not its estimate of ~15) leave the second waiting for the bucket to drain
    assert arrivals[1] - arrivals[0] >= 0.9, arrivals


@pytest.mark.parametrize("field", ["max_requests_per_minute", "max_tokens_per_minute"])
def test_a_rate_limit_must_be_positive(field):
    with pytest.raises(InputError, match=field):
        _backend("http://127.0.0.1:9/v1", **{field: 0})
