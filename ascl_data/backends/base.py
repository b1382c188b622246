"""One async interface for every teacher: a batch of conversations + tools + sampling parameters in,
assistant messages out, with token counts and timings."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from ascl_data.schemas import StrictModel


class SamplingParams(StrictModel):

    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int | None = None
    stop: list[str] | None = None


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
    uses_api_key: ClassVar[bool] = False  # takes `api_key_env` (remote servers; in-process engines need no key)

    @abc.abstractmethod
    async def generate(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        """Answer each conversation with one assistant turn, in order."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or engines."""
