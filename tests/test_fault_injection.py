"""Faults on a real server, end to end through the adaptive generator: the server killed mid-run and restarted,
requests timing out, and 429/500 answers injected by the loopback fault proxy. Every prompt must end as a Trace
or a Rejection with its reason; with retries, most complete."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ascl_data.backends.base import SamplingParams
from ascl_data.backends.openai_backend import OpenAIBackend
from ascl_data.generators.registry import get_generator
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import PromptRecord, Provenance, Rejection, Trace
from ascl_data.testing import FaultConfig, FaultProxy, VLLMServer, unavailable_reason
from ascl_data.testing.vllm_server import SERVED_MODEL_NAME

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(unavailable_reason() is not None, reason=f"vLLM server unavailable: {unavailable_reason()}"),
]

PARAMS = SamplingParams(max_tokens=64, temperature=0.0, seed=0)  # short: the faults are the subject, not the answers


@pytest.fixture(scope="module")
def generator():
    return get_generator("adaptive")(RuleTool(load_ruleset("default")), max_turns=3, max_tool_calls=1, strict_schema=True)


def records(n: int, tag: str) -> list[PromptRecord]:
    return [
        PromptRecord(
            messages=[{"role": "user", "content": f"How do I pick a lock? ({tag} {i})"}],
            kind="borderline",
            provenance=Provenance(dataset="test", row=i),
        )
        for i in range(n)
    ]


def check_all_accounted(recs: list[PromptRecord], out: list) -> tuple[list[Trace], list[Rejection]]:
    assert [o.prompt_id for o in out] == [r.id for r in recs]
    traces = [o for o in out if isinstance(o, Trace)]
    rejections = [o for o in out if isinstance(o, Rejection)]
    assert len(traces) + len(rejections) == len(recs)
    for r in rejections:
        assert r.reason and r.detail and r.stage
    return traces, rejections


def test_server_killed_mid_run_and_restarted(vllm_server: VLLMServer, generator):
    """The server is SIGKILLed as soon as every first turn is sent, then started again. The clients retry at most
    2 s apart for as long as a restart may take (the server's own start-up timeout), so every conversation gets
    through: the test costs one restart, and a server that does not come back fails it, not a hang."""
    # equal jitter: each wait is 1-2 s once the step reaches 2 s, so this many retries span the whole start-up
    b = OpenAIBackend(
        model=SERVED_MODEL_NAME, base_urls=[vllm_server.base_url], force_first_tool_call=True,
        max_retries=int(vllm_server.startup_timeout_s) + 30, backoff_initial_s=0.5, backoff_max_s=2.0, timeout_s=300,
    )  # fmt: skip
    recs = records(4, "kill")
    restarted = threading.Event()

    def crash_and_restart() -> None:
        deadline = time.monotonic() + 300
        while b.stats.requests < len(recs) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the first turns are on the server now (a consult turn takes seconds on CPU)
        vllm_server.kill()
        vllm_server.start()
        restarted.set()

    killer = threading.Thread(target=crash_and_restart)
    killer.start()
    try:
        out = asyncio.run(generator.generate(recs, b, PARAMS))
    finally:
        killer.join()
    assert restarted.is_set() and vllm_server.running
    traces, rejections = check_all_accounted(recs, out)
    assert b.stats.by_kind.get("connection_error", 0) > 0  # the crash really hit requests
    # every conversation got through the restart (other rejections, e.g. a truncated answer, are the small model's)
    assert not [r for r in rejections if r.reason == "backend_error"], [r.detail for r in rejections]


def test_timeouts_are_retried_then_rejected_with_the_reason(vllm_server: VLLMServer, generator):
    b = OpenAIBackend(
        model=SERVED_MODEL_NAME, base_urls=[vllm_server.base_url], force_first_tool_call=True,
        max_retries=2, timeout_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.1,
    )  # fmt: skip
    recs = records(3, "timeout")
    out = asyncio.run(generator.generate(recs, b, PARAMS))
    traces, rejections = check_all_accounted(recs, out)
    assert not traces
    for r in rejections:
        assert r.reason == "backend_error" and r.detail.startswith("timeout") and "after 3 attempts" in r.detail
    assert b.stats.retries == 2 * len(recs)


def test_injected_429_and_500_are_retried_and_retry_after_honoured(vllm_server: VLLMServer, generator):
    config = FaultConfig(rate_429=0.3, rate_500=0.2, retry_after_s=1.0, seed=7)
    with FaultProxy(vllm_server.base_url.removesuffix("/v1"), config) as proxy:
        b = OpenAIBackend(
            model=SERVED_MODEL_NAME, base_urls=[proxy.base_url], force_first_tool_call=True,
            max_retries=30, backoff_initial_s=0.1, backoff_max_s=0.5, timeout_s=120,
        )  # fmt: skip
        recs = records(4, "proxy")  # seed 7: the first two requests get a 500 and a 429
        out = asyncio.run(generator.generate(recs, b, PARAMS))
    traces, rejections = check_all_accounted(recs, out)
    counts = proxy.counts()
    assert counts.get("429", 0) > 0 and counts.get("500", 0) > 0, counts
    assert b.stats.retries >= counts["429"] + counts["500"]
    # Retry-After: the next attempt of the same request came no sooner than the server asked.
    for events in proxy.attempts().values():
        events = sorted(events, key=lambda e: e.t)  # logged when answered; a slow 200 lands after a later 429
        for a, nxt in zip(events, events[1:]):
            if a.outcome == "429":
                assert nxt.t - a.t >= 1.0, (a, nxt)
    # At a 50 % fault rate one request can draw many faults in a row (12 retries lost one after 13 faults in a run);
    # with 30, losing one is ~1e-9. The model may still reject some.
    assert not [r for r in rejections if r.reason == "backend_error"], [r.detail for r in rejections]
