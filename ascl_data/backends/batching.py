"""Continuous batching for in-process engines: requests from many conversations that advance on their own are
collected into one batch while the engine works on the previous one, so the engine's batches stay full without a
turn or batch barrier in the build."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ascl_data.backends.base import Completion, SamplingParams

Conversation = list[dict[str, Any]]
RunBatch = Callable[[list[Conversation], list[dict[str, Any]] | None, SamplingParams], list[Completion]]


@dataclass
class _Request:
    conversations: list[Conversation]
    tools: list[dict[str, Any]] | None
    params: SamplingParams
    key: str
    done: asyncio.Future[list[Completion]]


class BatchQueue:
    """Runs `run_batch` (blocking; one batch at a time, in a worker thread) over whatever requests are waiting: the
    oldest request's tools and sampling parameters pick the batch, filled with the waiting requests that share
    them, up to `max_batch` conversations."""

    def __init__(self, run_batch: RunBatch, max_batch: int):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._waiting: list[_Request] = []
        self._worker: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []  # conversations per engine call, for tests and benchmarks

    async def submit(self, conversations: list[Conversation], tools: list[dict[str, Any]] | None,
                     params: SamplingParams) -> list[Completion]:
        if not conversations:
            return []
        key = json.dumps([tools, params.model_dump()], sort_keys=True)
        request = _Request(conversations, tools, params, key, asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await request.done

    def _next_batch(self) -> list[_Request]:
        head = self._waiting[0]
        batch, size = [], 0
        for request in list(self._waiting):
            if request.key == head.key and (not batch or size + len(request.conversations) <= self.max_batch):
                batch.append(request)
                size += len(request.conversations)
                self._waiting.remove(request)
        return batch

    async def _drain(self) -> None:
        while self._waiting:
            batch = [r for r in self._next_batch() if not r.done.cancelled()]
            if not batch:
                continue
            conversations = [c for r in batch for c in r.conversations]
            self.batch_sizes.append(len(conversations))
            try:
                results = await asyncio.to_thread(self.run_batch, conversations, batch[0].tools, batch[0].params)
            except Exception as exc:  # noqa: BLE001 - the callers get the engine's exception, the queue goes on
                for r in batch:
                    if not r.done.done():
                        r.done.set_exception(exc)
                continue
            start = 0
            for r in batch:
                if not r.done.done():
                    r.done.set_result(results[start : start + len(r.conversations)])
                start += len(r.conversations)
