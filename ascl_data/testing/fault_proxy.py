"""A small loopback HTTP/1.1 proxy that forwards to a real server and injects faults at configured rates.

Why: 429s with Retry-After, 500s, hung requests and dropped connections are what a real deployment throws at
the `openai` backend; a proxy in front of a real server produces them on demand, with everything else being
the real server's answers. `ScriptedServer` plays a broken or hostile server itself (a 401 that echoes the key,
HTML with status 200, a body sent one byte a second). The proxy runs its own asyncio loop in a thread so sync
fixtures and async tests can both use it, and it logs every request (a hash of its body, when, what happened) so
tests can check that a client honoured Retry-After for *that* request.

Standard library only. Loopback only: it refuses an upstream that is not on 127.0.0.0/8 or ::1.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlparse

Outcome = Literal["forwarded", "429", "500", "hang", "drop", "upstream_error"]


@dataclass
class FaultConfig:
    """Per-request fault probabilities (checked in this order; the rest is forwarded)."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0  # hold the request `hang_s` seconds and then drop it (client sees a timeout)
    rate_drop: float = 0.0  # close the connection without an answer
    retry_after_s: float | None = 1.0  # Retry-After header on 429 (and 503); None = no header
    hang_s: float = 30.0
    seed: int = 0
    only_paths: tuple[str, ...] = ("/v1/chat/completions",)  # faults only here; /health etc. pass through

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500", "rate_hang", "rate_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultConfig.{name} must be in [0, 1], got {value}")
        if self.rate_429 + self.rate_500 + self.rate_hang + self.rate_drop > 1.0:
            raise ValueError("FaultConfig rates add up to more than 1")


@dataclass(frozen=True)
class Event:
    t: float  # time.monotonic() when the request arrived
    body_hash: str
    path: str
    outcome: Outcome
    status: int | None


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class FaultProxy:
    """`with FaultProxy("http://127.0.0.1:8000", FaultConfig(rate_429=0.3)) as proxy: proxy.base_url`."""

    def __init__(self, upstream: str, config: FaultConfig | None = None, port: int = 0):
        parsed = urlparse(upstream)
        if parsed.scheme != "http" or not parsed.hostname or parsed.port is None:
            raise ValueError(f"upstream must be http://HOST:PORT, got {upstream!r}")
        host = "127.0.0.1" if parsed.hostname == "localhost" else parsed.hostname
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the fault proxy forwards to loopback addresses only, not {host}")
        self.upstream_host, self.upstream_port = host, parsed.port
        self.config = config or FaultConfig()
        self.port = port
        self.events: list[Event] = []
        self.active = 0  # requests being handled now
        self.max_active = 0  # the most at once: how tests see a client's concurrency bound
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # surfaced by start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        self._server.close()
        loop.run_until_complete(self._server.wait_closed())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counts(self) -> dict[str, int]:
        """Outcomes of the requests on the fault paths (`only_paths`), by kind."""
        with self._lock:
            out: dict[str, int] = {}
            for e in self.events:
                if self._on_fault_path(e.path):
                    out[e.outcome] = out.get(e.outcome, 0) + 1
            return out

    def _on_fault_path(self, path: str) -> bool:
        return any(path.startswith(p) for p in self.config.only_paths)

    # -- one connection ----------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                keep = await self._serve(request, writer)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    def _decide(self, path: str) -> Outcome:
        c = self.config
        if not self._on_fault_path(path):
            return "forwarded"
        with self._lock:
            x = self._rng.random()
        for outcome, rate in (("429", c.rate_429), ("500", c.rate_500), ("hang", c.rate_hang), ("drop", c.rate_drop)):
            if x < rate:
                return outcome  # type: ignore[return-value]
            x -= rate
        return "forwarded"

    def _log(self, t: float, request: _Request, outcome: Outcome, status: int | None) -> None:
        with self._lock:
            self.events.append(Event(t, body_hash(request.body), request.target, outcome, status))

    async def _serve(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            return await self._serve_one(request, writer)
        finally:
            with self._lock:
                self.active -= 1

    def attempts(self) -> dict[str, list[Event]]:
        """Events on the fault paths (`only_paths`: the chat requests, not a client's /v1/models question) grouped
        by request body (a retry sends the same body), in arrival order."""
        with self._lock:
            out: dict[str, list[Event]] = {}
            for e in self.events:
                if self._on_fault_path(e.path):
                    out.setdefault(e.body_hash, []).append(e)
            return out

    async def _serve_one(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        t = time.monotonic()
        outcome = self._decide(request.target)
        if outcome == "429":
            headers = [("retry-after", _fmt(self.config.retry_after_s))] if self.config.retry_after_s is not None else []
            await _respond(writer, 429, "Too Many Requests", _error_body("rate limited (injected)", 429), headers)
            self._log(t, request, outcome, 429)
            return True
        if outcome == "500":
            await _respond(writer, 500, "Internal Server Error", _error_body("server error (injected)", 500), [])
            self._log(t, request, outcome, 500)
            return True
        if outcome == "hang":
            self._log(t, request, outcome, None)
            await asyncio.sleep(self.config.hang_s)
            return False
        if outcome == "drop":
            self._log(t, request, outcome, None)
            return False
        try:
            status, reason, headers, body = await self._forward(request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._log(t, request, "upstream_error", 502)
            await _respond(writer, 502, "Bad Gateway", _error_body(f"upstream unreachable: {exc}", 502), [])
            return True
        self._log(t, request, "forwarded", status)
        await _respond(writer, status, reason, body, headers)
        return True

    async def _forward(self, request: _Request) -> tuple[int, str, list[tuple[str, str]], bytes]:
        reader, writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        try:
            skip = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "host"}
            lines = [f"{request.method} {request.target} HTTP/1.1", f"host: {self.upstream_host}:{self.upstream_port}"]
            lines += [f"{k}: {v}" for k, v in request.headers if k.lower() not in skip]
            lines += [f"content-length: {len(request.body)}", "connection: close"]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
            await writer.drain()
            status_line = (await reader.readuntil(b"\r\n")).decode("latin-1").strip()
            _, status, *reason = status_line.split(" ", 2)
            headers = await _read_headers(reader)
            body = await _read_body(reader, headers, until_eof=True)
            return int(status), (reason[0] if reason else ""), headers, body
        finally:
            writer.close()


# --------------------------------------------------------------------------- HTTP/1.1 bits


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _error_body(message: str, code: int) -> bytes:
    return json.dumps({"error": {"message": message, "type": "injected_fault", "code": code}}).encode()


async def _read_headers(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    headers = []
    while True:
        line = (await reader.readuntil(b"\r\n")).decode("latin-1")
        if line == "\r\n":
            return headers
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]], until_eof: bool = False) -> bytes:
    if (_header(headers, "transfer-encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await _read_headers(reader)  # trailers
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = _header(headers, "content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    return await reader.read() if until_eof else b""


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError:
        return None
    method, target, _version = line.decode("latin-1").strip().split(" ", 2)
    headers = await _read_headers(reader)
    body = await _read_body(reader, headers)
    return _Request(method, target, headers, body)


async def _respond(
    writer: asyncio.StreamWriter, status: int, reason: str, body: bytes, headers: list[tuple[str, str]]
) -> None:
    skip = {"connection", "keep-alive", "transfer-encoding", "content-length"}
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in skip]
    if not any(k.lower() == "content-type" for k, _ in headers):
        lines.append("content-type: application/json")
    lines += [f"content-length: {len(body)}", "connection: keep-alive"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


# --------------------------------------------------------------------------- a scripted hostile server


@dataclass(frozen=True)
class Answer:
    """What a `ScriptedServer` sends for one request: status, body, headers, and optionally a trickle (one byte
    every `trickle_s` seconds after the headers, the way a stuck proxy or a slow-loris server sends)."""

    status: int = 200
    body: bytes | str | dict = b""
    headers: tuple[tuple[str, str], ...] = ()
    trickle_s: float | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


Script = Callable[[str, dict[str, str], dict], Answer]


def chat_answer(content: str, model: str = "m") -> Answer:
    """A well-formed chat completion whose assistant message says `content`."""
    return Answer(
        200,
        {
            "id": "x", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
    )  # fmt: skip


class ScriptedServer:
    """An OpenAI-compatible loopback server whose every answer a test writes: `script(path, headers, json_body)`
    returns the `Answer` (a 401 that echoes the key, HTML with status 200, a trickle...). `GET /v1/models` lists
    `model` with `max_model_len` (None: left out). Requests are recorded in `requests` as (path, json body).

    Why not the proxy: these are the answers of a broken or hostile server itself, which no real one gives on
    demand. Standard library only, loopback only."""

    def __init__(self, script: Script, model: str = "m", max_model_len: int | None = None):
        self.script = script
        self.model = model
        self.max_model_len = max_model_len
        self.requests: list[tuple[str, dict]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def chat_requests(self) -> list[dict]:
        return [body for path, body in self.requests if path.endswith("/chat/completions")]

    def __enter__(self) -> ScriptedServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.rstrip("/").endswith("/models"):
                    entry: dict = {"id": outer.model, "object": "model", "owned_by": "test"}
                    if outer.max_model_len is not None:
                        entry["max_model_len"] = outer.max_model_len
                    self._send(Answer(200, {"object": "list", "data": [entry]}))
                else:
                    self._send(Answer(404, {"error": {"message": "not found"}}))

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                outer.requests.append((self.path, body))
                self._send(outer.script(self.path, {k.lower(): v for k, v in self.headers.items()}, body))

            def _send(self, answer: Answer) -> None:
                payload = answer.payload()
                self.send_response(answer.status)
                names = {k.lower() for k, _ in answer.headers}
                for k, v in answer.headers:
                    self.send_header(k, v)
                if "content-type" not in names:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                try:
                    if answer.trickle_s is None:
                        self.wfile.write(payload)
                        return
                    for i in range(len(payload)):
                        self.wfile.write(payload[i : i + 1])
                        self.wfile.flush()
                        time.sleep(answer.trickle_s)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hung up mid-answer is what these tests do on purpose

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
