"""The `openai` teacher backend: any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp, hosted APIs).

Why this shape:
- bounded concurrency (one semaphore over all replicas), so a large build does not open thousands of requests;
- when and whether a request is sent again (retries, backoff, Retry-After, the deadline, requests- and
  tokens-per-minute limits) is `request_policy.py`'s decision; this module builds requests and reads responses;
- several base URLs: requests go to the least-busy healthy replica; a replica that fails is benched for a
  short while and the retry goes elsewhere (fail-over);
- the API key comes only from the environment variable named by `api_key_env`; it never appears in a repr,
  an error text or a Completion;
- one conversation that fails for good yields `Completion(error=...)`; `generate` never raises for one item,
  except for faults no retry can fix (401/403: the key; 404: the model or URL), which raise `FatalError` at once
  instead of failing every prompt of the build;
- a conversation too long for the teacher's context (the `max_model_len` setting, else what the server's
  `/v1/models` reports) comes back as `error_reason="prompt_too_long"` without being sent;
- everything that comes back (error texts, raw output, the message) is passed through `ascl_data.secrets.scrub`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, Field, ValidationError, field_validator

from ascl_data.backends.base import MAX_USAGE_TOKENS, Backend, Completion, SamplingParams
from ascl_data.backends.consult_policy import forces_call, offered_tools
from ascl_data.backends.request_policy import (  # noqa: F401 - backoff_delay, parse_retry_after: re-exported
    Failure,
    GaveUp,
    RequestPolicy,
    backoff_delay,
    classify,
    parse_retry_after,
)
from ascl_data.backends.settings import OpenAISettings  # the backend's settings (a leaf), re-exported here
from ascl_data.errors import FatalError, InputError, Problem
from ascl_data.secrets import register_secret, scrub, scrub_json
from ascl_data.toolcalls import normalize_message

PROMPT_TOO_LONG = "prompt_too_long"
RESPONSE_TOO_LONG = "response_too_long"
INVALID_USAGE = "invalid_usage"
#: An answer longer than `max_tokens` x this many characters cannot be `max_tokens` tokens (a token is rarely
#: over 16 characters): the server ignored `max_tokens`, and the answer (text, reasoning and tool arguments
#: together) is rejected instead of putting megabytes into an accepted row.
MAX_CHARS_PER_TOKEN = 32


class Usage(BaseModel):
    """A completion's `usage` as a server reports it, checked where it comes in: whole token counts from 0 to
    `MAX_USAGE_TOKENS` (a fractional count is rounded; a missing one is 0)."""

    prompt_tokens: int = Field(0, ge=0, le=MAX_USAGE_TOKENS)
    completion_tokens: int = Field(0, ge=0, le=MAX_USAGE_TOKENS)

    @field_validator("prompt_tokens", "completion_tokens", mode="before")
    @classmethod
    def _whole(cls, v: Any) -> Any:
        if v is None:
            return 0
        if isinstance(v, bool):
            raise ValueError("not a number")
        if isinstance(v, float) and math.isfinite(v):
            return round(v)
        return v


class _Secret:
    """Holds the API key so that no repr, log line or traceback local shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "_Secret('***')"


@dataclass
class _Replica:
    url: str
    client: openai.AsyncOpenAI
    in_flight: int = 0
    benched_until: float = 0.0
    served: int = 0


def _shown(obj: Any) -> str:
    """A short, scrubbed view of what a server sent, for an error text."""
    try:
        text = obj.model_dump_json(warnings=False) if hasattr(obj, "model_dump_json") else str(obj)
    except Exception:  # noqa: BLE001 - a garbled object may not even serialise
        text = str(obj)
    return repr((scrub(text) or "")[:200])


def request_messages(conversation: list[dict[str, Any]], send_reasoning: bool) -> list[dict[str, Any]]:
    """The messages as the chat API wants them: None-valued keys dropped (our rows carry every key), reasoning
    left out unless asked for."""
    out = []
    for msg in conversation:
        clean = {k: v for k, v in msg.items() if v is not None}
        if not send_reasoning:
            clean.pop("reasoning_content", None)
        if clean.get("role") == "assistant" and clean.get("tool_calls") and "content" not in clean:
            clean["content"] = ""  # some servers insist on the key
        out.append(clean)
    return out


def _has_tool_result(conversation: list[dict[str, Any]]) -> bool:
    return any(m.get("role") == "tool" for m in conversation)


def _text(content: Any) -> Any:
    """`content` as text: the API allows a list of parts, `[{"type": "text", "text": ...}, ...]`, which is joined;
    a part of another type (an image, audio) is not an answer a text dataset can keep, so it stays as it came and
    fails the message's check."""
    if isinstance(content, list) and content and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "".join(p["text"] for p in content)
    return content


def message_from_choice(choice: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(assistant message dict, raw text) from a chat completion choice. Native `tool_calls` and
    `reasoning_content` (or `reasoning`) are used where the server gives them; a server without a tool parser
    leaves `<tool_call>` blocks in the content, which are parsed here. A message that cannot be parsed comes
    back as None with its raw text, so the tool loop can reject it with the parser's reason."""
    msg = choice.message
    content: str | None = _text(msg.content)
    extra = msg.model_extra or {}
    data: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "reasoning_content": extra.get("reasoning_content") or extra.get("reasoning") or None,
    }
    if msg.tool_calls:
        data["tool_calls"] = [
            {
                "id": call.id or "",
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments or "{}"},
            }
            for call in msg.tool_calls
        ]
    if content is not None and not isinstance(content, str):
        raise TypeError(f"content is {type(content).__name__}, not text")
    parsed = normalize_message(data, salt=choice.model_dump_json(warnings=False) if not msg.tool_calls else "")
    if not parsed.ok:
        return None, content
    message = parsed.message
    assert message is not None
    if msg.tool_calls:  # keep the server's ids where it gave them
        for call, native in zip(message.get("tool_calls") or [], msg.tool_calls):
            call["id"] = native.id or call["id"]
    return message, content


#: per `OpenAIBackend.role`: who refused, what stops, and where its key's variable is named
_ROLES = {
    "teacher": ("the teacher server", "so the build stops; it resumes where it stopped once this is fixed",
                "teacher.api_key_env"),
    "judge": ("the judge server", "so the run stops (a build resumes where it stopped once this is fixed)",
              "judge.model_judge.api_key_env (eval: --judge-setting api_key_env=VAR)"),
    "rater": ("the rater server", "so the run stops (a build resumes where it stopped once this is fixed)",
              "quality.rater.api_key_env"),
    "model": ("the server of the evaluated model", "so the evaluation stops",
              "--backend-setting api_key_env=VAR (or backend_settings.api_key_env in --config)"),
}


def _answer_chars(message: dict[str, Any]) -> int:
    """The characters the teacher generated in a message: its text, its reasoning and its tool calls' arguments."""
    calls = message.get("tool_calls") or []
    return (len(message.get("content") or "") + len(message.get("reasoning_content") or "")
            + sum(len(c["function"]["name"] or "") + len(c["function"]["arguments"] or "") for c in calls))


class OpenAIBackend(Backend):
    """Teacher over one or more OpenAI-compatible endpoints. Settings: see `OpenAISettings`."""

    name = "openai"
    #: what the server is to whoever made the backend, for the message of a refusal no retry can fix: "teacher"
    #: (a build's), "judge" (a model judge's) or "model" (the model `eval` evaluates)
    role = "teacher"
    concurrency = property(lambda self: self.settings.max_concurrency)

    def __init__(self, settings: OpenAISettings | None = None, **kwargs: Any):
        if settings is None:
            try:
                settings = OpenAISettings(**kwargs)
            except ValidationError as exc:
                raise InputError(
                    "openai backend settings",
                    [Problem("teacher", ".".join(map(str, e["loc"])), e["msg"].removeprefix("Value error, "))
                     for e in exc.errors(include_url=False)],
                ) from None
        elif kwargs:
            raise TypeError("pass either settings or keyword settings, not both")
        self.settings = settings
        self.model = settings.model
        api_key = "EMPTY"
        if settings.api_key_env:
            api_key = os.environ.get(settings.api_key_env, "")
            if not api_key:
                raise InputError(
                    "openai backend settings",
                    [Problem("teacher", "api_key_env", f"environment variable {settings.api_key_env} is not set")],
                )
        self._api_key = _Secret(api_key)
        register_secret(api_key)  # scrubbed from everything stored or logged in this process
        self._replicas = [_Replica(url, self._client(url)) for url in settings.base_urls]
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rr = 0
        self.policy = RequestPolicy(settings)
        self.stats = self.policy.stats
        self._context: int | None | bool = False  # False: not asked yet; None: unknown (no guard)
        self._context_lock: asyncio.Lock | None = None
        self._tokenizer: Any = None
        self._stopped: FatalError | None = None  # set by the first fatal refusal: nothing more is sent

    def __repr__(self) -> str:  # no key, ever
        s = self.settings
        return (
            f"OpenAIBackend(model={s.model!r}, base_urls={s.base_urls!r}, api_key_env={s.api_key_env!r}, "
            f"max_concurrency={s.max_concurrency})"
        )

    def _client(self, url: str) -> openai.AsyncOpenAI:
        http_client = None
        if url.startswith("http://"):
            # No TLS on a plain-http replica, so no certificate store: loading it is most of the client's start-up
            # (~0.2 s, paid before a build's first request). The context still verifies and trusts no authority,
            # so a redirect to https fails closed instead of trusting any certificate.
            http_client = openai.DefaultAsyncHttpxClient(
                base_url=url, timeout=self.settings.timeout_s, verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            )
        return openai.AsyncOpenAI(
            base_url=url, api_key=self._api_key.value, max_retries=0, timeout=self.settings.timeout_s,
            http_client=http_client,
        )

    def _bind_loop(self) -> None:
        """Semaphores and connection pools belong to one event loop; a new loop (a second `asyncio.run`) gets
        fresh ones instead of failing with 'attached to a different loop'."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        if self._loop is not None:
            for replica in self._replicas:
                replica.client = self._client(replica.url)
        self._loop = loop
        self._semaphore = asyncio.Semaphore(self.settings.max_concurrency)
        self._context_lock = asyncio.Lock()
        self.policy.bind_loop()

    # -- replicas -----------------------------------------------------------
    def _pick(self) -> _Replica:
        now = time.monotonic()
        healthy = [r for r in self._replicas if r.benched_until <= now]
        pool = healthy or [min(self._replicas, key=lambda r: r.benched_until)]
        self._rr += 1
        n = len(pool)
        # least in flight; ties broken round-robin so load spreads evenly
        return min((pool[(self._rr + i) % n] for i in range(n)), key=lambda r: r.in_flight)

    # -- one request --------------------------------------------------------
    async def _one(
        self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: SamplingParams
    ) -> Completion:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.model,
            "messages": request_messages(conversation, s.send_reasoning),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = params.stop
        tools = offered_tools(params.consult, tools)  # none offered under `forbidden`
        if tools:
            body["tools"] = tools
            tool_choice = s.tool_choice
            if forces_call(params.consult, conversation, tools) or (
                s.force_first_tool_call and not _has_tool_result(conversation)
            ):
                tool_choice = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        body.update(s.extra_body)  # as the client merges `extra_body`: top-level keys, the recipe's win

        tokens = self.prompt_tokens(conversation, tools) + params.max_tokens if self.policy.counts_tokens else 0
        started = time.perf_counter()
        sent_to: list[_Replica] = []  # the replica of each attempt, for what a failure does to it
        result = await self.policy.run(lambda: self._send(body, tokens, sent_to),
                                       lambda failure: self._failed(sent_to[-1], failure))
        if isinstance(result, GaveUp):
            return Completion(error=result.error, latency_s=time.perf_counter() - started)
        completion = self._completion(result, time.perf_counter() - started, params.max_tokens)
        if tokens and completion.prompt_tokens + completion.completion_tokens > tokens:
            await self.policy.charge(completion.prompt_tokens + completion.completion_tokens - tokens)
        return completion

    async def _send(self, body: dict[str, Any], tokens: int, sent_to: list[_Replica]) -> ChatCompletion:
        """One attempt: a concurrency slot, the rate limits, the least-busy replica, the request under its deadline."""
        assert self._semaphore is not None
        async with self._semaphore:
            if self._stopped is not None:
                raise self._stopped
            await self.policy.admit(tokens)
            replica = self._pick()
            sent_to.append(replica)
            replica.in_flight += 1
            self.stats.requests += 1
            try:
                # `post` rather than `chat.completions.create`: the body is plain JSON already, and create's
                # recursive type-driven transform of messages and tools was a quarter of the client's CPU per
                # request (benchmarks/bench_build_throughput.py --client-cpu); the response is parsed the same way.
                response = await self.policy.deadline(
                    replica.client.post("/chat/completions", body=body, cast_to=ChatCompletion)
                )
            finally:
                replica.in_flight -= 1
        replica.served += 1
        replica.benched_until = 0.0
        return response

    def _failed(self, replica: _Replica, failure: Failure) -> None:
        """A failed attempt's consequences for the replica it went to: benched, or the whole run stopped."""
        if failure.fatal:
            self._stopped = self._fatal(replica.url, failure)
            raise self._stopped from None
        if failure.bench_replica and len(self._replicas) > 1:
            replica.benched_until = time.monotonic() + self.settings.replica_cooldown_s

    def _fatal(self, url: str, failure: Failure) -> FatalError:
        s = self.settings
        who, stops, key_setting = _ROLES.get(self.role, (f"the {self.role} server", "so the run stops", "api_key_env"))
        why = {
            "unauthorized": f"the key was refused: check the key in ${s.api_key_env}" if s.api_key_env
            else f"the server wants a key: set {key_setting} to the name of the variable that holds it",
            "forbidden": "this key may not use this model or endpoint",
            "not_found": "no such model or endpoint: does base_url end in /v1, and does the server serve this model "
            "(its /v1/models lists the names)?",
        }.get(failure.kind, "")
        return FatalError(f"{who} at {url} refused a request for model {s.model!r} ({failure.detail}); {why}. "
                          f"No retry can fix this, {stops}.")

    def _completion(self, response: Any, latency: float, max_tokens: int) -> Completion:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            # a 200 whose body is not a chat completion: an HTML page, plain text, a JSON error object
            return Completion(
                error="invalid_response: the server's answer is not a chat completion (no `choices`): "
                f"{_shown(response)}",
                latency_s=latency,
            )
        if not choices:
            return Completion(error="empty_response: the server returned no choices", latency_s=latency)
        choice = choices[0]
        try:
            # the client builds its objects without validation: a garbled message surfaces as a type error here
            message, raw = message_from_choice(choice)
        except (AttributeError, TypeError, KeyError, ValueError):
            return Completion(
                error="invalid_response: the server's answer is not a well-formed chat completion (its first choice "
                f"has no readable assistant message): {_shown(choice)}",
                latency_s=latency,
            )
        reported = getattr(response, "usage", None)
        try:
            usage = Usage.model_validate({"prompt_tokens": getattr(reported, "prompt_tokens", None),
                                          "completion_tokens": getattr(reported, "completion_tokens", None)})
        except ValidationError:
            return Completion(
                error=f"{INVALID_USAGE}: the server reported usage {_shown(reported)}; token counts are whole numbers "
                f"from 0 to {MAX_USAGE_TOKENS:,}, so the answer is not kept (its cost is unknown)",
                error_reason=INVALID_USAGE, latency_s=latency,
            )
        chars = _answer_chars(message) if message is not None else len(raw or "")
        if chars > max_tokens * MAX_CHARS_PER_TOKEN:
            return Completion(
                error=f"{RESPONSE_TOO_LONG}: the answer is {chars:,} characters, more than max_tokens {max_tokens} "
                f"tokens can be (at most {MAX_CHARS_PER_TOKEN} characters a token): the server did not honour "
                "max_tokens, so the answer is not kept",
                error_reason=RESPONSE_TOO_LONG, prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, latency_s=latency,
            )
        return Completion(
            message=scrub_json(message),
            raw_text=scrub(raw),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_s=latency,
            finish_reason=choice.finish_reason,
        )

    # -- the prompt-length guard -------------------------------------------------
    async def context_length(self) -> int | None:
        """The teacher's context in tokens: the `max_model_len` setting, else what the server reports for this model
        in /v1/models (vLLM and SGLang do); None where neither says (no guard). Asked once."""
        if self.settings.max_model_len is not None:
            return self.settings.max_model_len
        self._bind_loop()
        assert self._context_lock is not None
        async with self._context_lock:
            if self._context is False:
                self._context = await self._ask_context()
        return self._context if isinstance(self._context, int) else None

    async def _ask_context(self) -> int | None:
        replica = self._replicas[0]
        try:
            models = await self.policy.deadline(replica.client.models.list())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a server without /v1/models simply gets no guard
            failure = classify(exc)
            if failure.kind in ("unauthorized", "forbidden"):
                raise self._fatal(replica.url, failure) from None
            return None
        for entry in getattr(models, "data", None) or []:
            if getattr(entry, "id", None) == self.model:
                value = (entry.model_extra or {}).get("max_model_len")
                return int(value) if isinstance(value, int) and value > 0 else None
        return None

    def prompt_tokens(self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
        """Prompt tokens of a request: counted by `tokenizer` where set, else estimated from its characters."""
        s = self.settings
        messages = request_messages(conversation, s.send_reasoning)
        if s.tokenizer:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(s.tokenizer)
            ids = self._tokenizer.apply_chat_template(messages, tools=tools, tokenize=True, add_generation_prompt=True)
            return len(ids["input_ids"] if hasattr(ids, "keys") else ids)  # a BatchEncoding in recent transformers
        text = json.dumps(messages, ensure_ascii=False) + (json.dumps(tools, ensure_ascii=False) if tools else "")
        return math.ceil(len(text) / s.chars_per_token)

    def _too_long(
        self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: SamplingParams,
        context: int | None,
    ) -> Completion | None:
        if context is None:
            return None
        n = self.prompt_tokens(conversation, tools)
        if n + params.max_tokens <= context:
            return None
        how = "tokens"
        if not self.settings.tokenizer:
            how += f" (estimated at {self.settings.chars_per_token:g} chars/token)"
        return Completion(
            error=f"{PROMPT_TOO_LONG}: the conversation is {n} {how}; with max_tokens {params.max_tokens} it does not "
            f"fit the teacher's context of {context} tokens, so it was not sent",
            error_reason=PROMPT_TOO_LONG,
        )

    # -- batch --------------------------------------------------------------
    async def _answer(
        self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: SamplingParams,
        context: int | None,
    ) -> Completion:
        return self._too_long(conversation, tools, params, context) or await self._one(conversation, tools, params)

    async def generate(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        self._bind_loop()
        context = await self.context_length()
        tasks = [asyncio.ensure_future(self._answer(c, tools, params, context)) for c in conversations]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # a FatalError (or a cancel) ends the whole batch now, not after every other request's retries
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def aclose(self) -> None:
        for replica in self._replicas:
            await replica.client.close()
