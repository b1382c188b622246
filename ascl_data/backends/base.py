"""One async interface for every teacher: a batch of conversations (`generate`) or one conversation (`complete`)
+ tools + sampling parameters in, assistant messages out, with token counts and timings."""

from __future__ import annotations

import abc
from typing import Any

from pydantic import BaseModel, Field

from ascl_data.backends.consult_policy import ConsultPolicy
from ascl_data.schemas import StrictModel


class SamplingParams(StrictModel):
    """How the teacher samples one request. `consult` is set per conversation by the build (the recipe's
    `generators[i].consult` for the prompt's kind), so it reaches every backend and the request cache key."""

    temperature: float = Field(0.7, ge=0.0)  # sampling temperature (0: greedy)
    top_p: float = Field(1.0, gt=0.0, le=1.0)  # nucleus sampling mass
    max_tokens: int = Field(512, ge=1)  # completion tokens per turn
    seed: int | None = None  # sampling seed (where the backend takes one)
    stop: list[str] | None = None  # stop strings
    consult: ConsultPolicy = "auto"  # auto: the teacher decides; required: first turn calls the tool; forbidden


#: The most tokens one request's usage may report: a bigger count is a broken server's (checked where usage comes in,
#: and on the cache's answers, so a number that overflows a shard's int64 never reaches one).
MAX_USAGE_TOKENS = 10**9


class Completion(BaseModel):
    """One assistant turn. `message` is an OpenAI assistant message dict (content, reasoning_content, tool_calls);
    `error` is set instead when this conversation failed for good (after retries), so one bad item never sinks
    the batch."""

    message: dict[str, Any] | None = None
    raw_text: str | None = None  # the text before tool-call parsing, where the backend has it
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None
    cached: bool = False
    error: str | None = None
    # machine-readable reason for `error` (e.g. "prompt_too_long", "timeout"); None means "backend_error"
    error_reason: str | None = None


class Backend(abc.ABC):
    """A teacher. Implementations: `openai`, `transformers`, `vllm`."""

    name: str = "backend"
    model: str = ""

    @abc.abstractmethod
    async def generate(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        """Answer each conversation with one assistant turn, in order."""

    @property
    def concurrency(self) -> int:
        """How many requests this backend serves at once: the build's default for `teacher.max_in_flight`."""
        return 8

    async def complete(
        self, conversation: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: SamplingParams
    ) -> Completion:
        """One conversation's next assistant turn. Conversations that advance on their own call this; in-process
        engines batch the requests that wait at the same time (see `ascl_data.backends.batching`)."""
        (completion,) = await self.generate([conversation], tools, params)
        return completion

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or engines."""
