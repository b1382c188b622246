"""A loopback OpenAI-compatible teacher with seeded per-request latency, for throughput benchmarks.

Why: on a shared 2-core machine a real model server's speed swings from run to run, so a ratio "build / bare loop"
measured against it is noisy. This server's answers and delays are a pure function of the request body: the same
request gets the same delay and the same answer on every path, so the only thing that differs between two clients
is how well they keep the server busy (how many requests they have in flight, and when).

Behaviour per request (seeded by a hash of the messages):
- delay: lognormal, median `median_s`, shape `sigma` (a request is "stuck" for `stuck_s` where its prompt contains
  the word STUCK);
- a conversation with tools offered and no tool result yet consults with probability `consult_p`: the answer is one
  `retrieve_safety_rules` call; otherwise the answer is text of a seeded length (unequal lengths, as real answers);
- usage counts: prompt tokens ~ characters / 4, completion tokens = the answer's words;
- `GET /v1/stats`: requests served, completion tokens, most requests in flight, and the span from the first
  request's arrival to the last answer (`span_s`: the time the client kept the server working, without its own
  start-up and wind-down) (`POST` also resets them).

Standard library only; binds 127.0.0.1. `python benchmarks/sim_teacher_server.py --port 8123` serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

MODEL = "sim-teacher"
WORDS = "the rules say that this request is fine to answer with care and context so here is a short reply".split()


@dataclass(frozen=True)
class SimConfig:
    median_s: float = 0.5
    sigma: float = 0.6
    consult_p: float = 0.6
    min_words: int = 8
    max_words: int = 120
    stuck_s: float = 3600.0


def _rng(messages: list[dict[str, Any]]) -> random.Random:
    key = hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).digest()
    return random.Random(int.from_bytes(key[:8], "big"))


def answer(body: dict[str, Any], cfg: SimConfig) -> tuple[float, dict[str, Any]]:
    """(delay in seconds, the chat.completion JSON) for one request body; a pure function of the messages."""
    messages = body.get("messages") or []
    rng = _rng(messages)
    delay = cfg.median_s * math.exp(cfg.sigma * rng.gauss(0.0, 1.0))
    user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    if "STUCK" in str(user):
        delay = cfg.stuck_s
    has_tool_result = any(m.get("role") == "tool" for m in messages)
    consult = bool(body.get("tools")) and not has_tool_result and rng.random() < cfg.consult_p
    prompt_tokens = sum(len(json.dumps(m)) for m in messages) // 4 + len(json.dumps(body.get("tools") or [])) // 4
    if consult:
        query = " ".join(str(user).split()[:8]) or "guidance"
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{
                "id": f"call_{rng.getrandbits(32):08x}",
                "type": "function",
                "function": {"name": "retrieve_safety_rules", "arguments": json.dumps({"query": query})},
            }],
        }  # fmt: skip
        completion_tokens, finish = 12, "tool_calls"
    else:
        n = rng.randint(cfg.min_words, cfg.max_words)
        message = {"role": "assistant", "content": " ".join(rng.choice(WORDS) for _ in range(n)) + "."}
        completion_tokens, finish = n, "stop"
    return delay, {
        "id": f"chatcmpl-{rng.getrandbits(48):012x}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", MODEL),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }  # fmt: skip


class SimTeacherServer:
    """`with SimTeacherServer(SimConfig()) as server: server.base_url` — runs its own loop in a thread."""

    def __init__(self, config: SimConfig | None = None, port: int = 0):
        self.config = config or SimConfig()
        self.port = port
        self.requests = 0
        self.completion_tokens = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset_counters(self) -> None:
        self.requests = self.completion_tokens = self.in_flight = self.max_in_flight = 0
        self.first_at = self.last_at = None

    @property
    def span_s(self) -> float:
        """Seconds from the first request's arrival to the last answer (0 before any)."""
        return 0.0 if self.first_at is None or self.last_at is None else round(self.last_at - self.first_at, 3)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "POST" and target.endswith("/chat/completions"):
                    self.requests += 1
                    self.first_at = self.first_at or time.perf_counter()
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    try:
                        delay, payload = answer(json.loads(body), self.config)
                        await asyncio.sleep(delay)
                        self.completion_tokens += payload["usage"]["completion_tokens"]
                    finally:
                        self.in_flight -= 1
                        self.last_at = time.perf_counter()
                    status = "200 OK"
                elif target.endswith("/stats"):  # counters for a client in another process; POST resets them
                    payload, status = {"requests": self.requests, "completion_tokens": self.completion_tokens,
                                       "max_in_flight": self.max_in_flight, "span_s": self.span_s}, "200 OK"
                    if method == "POST":
                        self.reset_counters()
                elif method == "GET" and target.endswith("/models"):
                    payload, status = {"object": "list", "data": [{"id": MODEL, "object": "model"}]}, "200 OK"
                else:
                    payload, status = {"error": {"message": f"no route {method} {target}"}}, "404 Not Found"
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> SimTeacherServer:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name="sim-teacher")
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--median-s", type=float, default=0.5)
    args = ap.parse_args()
    with SimTeacherServer(SimConfig(median_s=args.median_s), port=args.port) as server:
        print(f"serving {server.base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
