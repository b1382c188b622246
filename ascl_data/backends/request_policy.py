"""How requests to an OpenAI-compatible server are sent: which failures are worth another try, how long to wait
before it, how long one request may take, and how fast requests and tokens may go. The conversation code
(`openai_backend.py`) builds requests and reads responses; every decision about *when* and *whether again* is here.

- a failure is classified once (`classify`): retryable or not, the server's `Retry-After`, whether the replica is
  benched, whether no retry can fix it (401/403/404: the build stops);
- backoff is equal-jitter exponential (`backoff_initial_s` to `backoff_max_s`), replaced by the server's
  `Retry-After` where it gives one (capped at `max_retry_after_s`, plus a little jitter);
- `timeout_s` is a deadline for the whole request (connect, wait, read the body), not the client's per-read timer;
- `max_requests_per_minute` and `max_tokens_per_minute` (hosted APIs) are leaky buckets (`aiolimiter`): requests
  are spaced evenly, tokens flow at most a second's allowance at once. A request's tokens are its prompt estimate
  plus `max_tokens`, as providers count them when they admit a request; a response whose usage says more is
  charged the difference.

The openai client's own retries stay off (`max_retries=0` on the client): they would retry on the same replica,
where ours fail over to another one, and they would hide the attempts that the stats and error texts count.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import openai
from aiolimiter import AsyncLimiter

from ascl_data.errors import FatalError
from ascl_data.secrets import scrub

T = TypeVar("T")

#: HTTP statuses worth another try: rate limits, server overload or failure, request timeout, conflict.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: HTTP statuses that every later request would get too: the build stops at the first one.
FATAL_STATUSES = frozenset({401, 403, 404})


class PolicySettings(Protocol):
    """The settings a `RequestPolicy` reads (`OpenAISettings` has them all)."""

    max_retries: int
    timeout_s: float
    backoff_initial_s: float
    backoff_max_s: float
    max_retry_after_s: float
    max_requests_per_minute: float | None
    max_tokens_per_minute: int | None


@dataclass
class Failure:
    """One failed attempt, classified."""

    kind: str  # timeout | rate_limited | server_error | connection_error | bad_request | ...
    detail: str
    retryable: bool
    retry_after: float | None = None
    bench_replica: bool = False
    fatal: bool = False  # every request would fail the same way: stop the build


@dataclass
class BackendStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class GaveUp:
    """What is left of a request that failed for good: its last failure and how many attempts it made."""

    failure: Failure
    attempts: int

    @property
    def error(self) -> str:
        n = self.attempts
        return f"{self.failure.kind}: {self.failure.detail} (after {n} attempt{'s' if n > 1 else ''})"


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After` (delta-seconds or an HTTP date) or `retry-after-ms`; None if absent/bad."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Equal-jitter exponential backoff: half the exponential step fixed, half random (spreads retries of a
    crowd of requests, and still guarantees a minimum wait so a restarting server gets time)."""
    step = min(cap, initial * (2**attempt))
    return step / 2 + rng.uniform(0, step / 2)


def classify(exc: BaseException) -> Failure:
    """Map an exception from the openai client to a retry decision."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", "request timed out", True, bench_replica=False)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return Failure("connection_error", f"{type(cause).__name__}: {cause}", True, bench_replica=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = _error_message(exc)
        retry_after = parse_retry_after(exc.response.headers) if exc.response is not None else None
        if status == 429:
            return Failure("rate_limited", f"HTTP 429: {message}", True, retry_after)
        if status in RETRYABLE_STATUSES:
            return Failure("server_error", f"HTTP {status}: {message}", True, retry_after, bench_replica=status >= 500)
        kind = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, "http_error")
        return Failure(kind, f"HTTP {status}: {message}", False, fatal=status in FATAL_STATUSES)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Failure("timeout", "request timed out", True)
    if isinstance(exc, ConnectionError):
        return Failure("connection_error", f"{type(exc).__name__}: {exc}", True, bench_replica=True)
    return Failure("client_error", f"{type(exc).__name__}: {exc}", False)


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error")
        msg = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if msg:
            return (scrub(str(msg)) or "")[:500]  # scrub first: a cut could leave half a key unrecognised
    return (scrub(str(exc.message)) or "")[:500]


class RequestPolicy:
    """Retries, backoff, the deadline and the rate limits of one backend's requests."""

    def __init__(self, settings: PolicySettings, rng: random.Random | None = None):
        self.settings = settings
        self.stats = BackendStats()
        self._rng = rng or random.Random()
        self._requests: AsyncLimiter | None = None
        self._tokens: AsyncLimiter | None = None

    def bind_loop(self) -> None:
        """Fresh limiters for a new event loop (a limiter's waiters belong to one loop)."""
        s = self.settings
        if s.max_requests_per_minute is not None:
            self._requests = AsyncLimiter(1, 60.0 / s.max_requests_per_minute)  # evenly spaced, no burst
        if s.max_tokens_per_minute is not None:
            per_second = s.max_tokens_per_minute / 60.0
            self._tokens = AsyncLimiter(per_second, 1.0)  # at most a second's allowance at once

    @property
    def counts_tokens(self) -> bool:
        return self.settings.max_tokens_per_minute is not None

    def delay(self, attempt: int, failure: Failure | None) -> float:
        """Seconds to wait before retry number `attempt` (1, 2, ...) after `failure`."""
        s = self.settings
        if failure is not None and failure.retry_after is not None:
            # the server said when; add a little jitter so a crowd does not return at one instant
            return min(failure.retry_after, s.max_retry_after_s) + self._rng.uniform(0, 0.1)
        return backoff_delay(attempt - 1, s.backoff_initial_s, s.backoff_max_s, self._rng)

    async def admit(self, tokens: int = 0) -> None:
        """Wait until the rate limits let one more request of `tokens` tokens go (at once where there are none)."""
        if self._requests is not None:
            await self._requests.acquire()
        await self.charge(tokens)

    async def charge(self, tokens: int) -> None:
        """Take `tokens` from the tokens-per-minute allowance, waiting for it (a second's allowance at a time)."""
        limiter = self._tokens
        if limiter is None or tokens <= 0:
            return
        left = float(tokens)
        while left > 0:
            take = min(left, limiter.max_rate)
            await limiter.acquire(take)
            left -= take

    async def deadline(self, request: Awaitable[T]) -> T:
        """`request`, cancelled with a timeout error once `timeout_s` has passed: a server that trickles bytes cannot
        hold it open longer (the client's own timeout restarts on every read)."""
        return await asyncio.wait_for(request, self.settings.timeout_s)

    async def run(self, attempt: Callable[[], Awaitable[T]], on_failure: Callable[[Failure], None]) -> T | GaveUp:
        """`attempt()` until it succeeds, at most `max_retries` + 1 times, waiting `delay` between tries (with no
        concurrency slot held). Each failure is classified and shown to `on_failure` (which may raise to stop
        everything, as does a `FatalError` from `attempt`); one that is not retryable ends the tries at once."""
        failure: Failure | None = None
        tries = 0
        for n in range(self.settings.max_retries + 1):
            if n:
                self.stats.retries += 1
                await asyncio.sleep(self.delay(n, failure))
            tries = n + 1
            try:
                return await attempt()
            except (asyncio.CancelledError, FatalError):
                raise
            except Exception as exc:  # classified here; nothing escapes for one item unless on_failure raises
                failure = classify(exc)
                self.stats.by_kind[failure.kind] = self.stats.by_kind.get(failure.kind, 0) + 1
                on_failure(failure)
                if not failure.retryable:
                    break
        self.stats.failures += 1
        assert failure is not None
        return GaveUp(failure, tries)
