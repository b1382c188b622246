"""The request cache: resume with zero repeated teacher calls, failures retried, concurrent writers, no secrets."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
from pathlib import Path
from typing import Any

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.cache import CachedBackend, RequestCache, request_key

PARAMS = SamplingParams(temperature=0.7, max_tokens=32, seed=1)
SECRET = "sk-test-THIS-MUST-NOT-LEAK-0123456789"


class CountingBackend(Backend):
    """Test double for a teacher that counts what reaches it (the point is the call count, not the text). Holds an
    API key and headers, as a real client does, to check they never reach the cache."""

    name = "counting"
    model = "teacher-1"

    def __init__(self, fail: set[str] = frozenset()):
        self.api_key = SECRET
        self.headers = {"Authorization": f"Bearer {SECRET}"}
        self.fail = set(fail)
        self.seen: list[str] = []
        self.calls = 0

    async def generate(self, conversations, tools, params):
        self.calls += 1
        out = []
        for conv in conversations:
            user = conv[-1]["content"]
            self.seen.append(user)
            if user in self.fail:
                out.append(Completion(error="HTTP 503 after retries"))
            else:
                out.append(Completion(message={"role": "assistant", "content": f"answer to {user}"},
                                      raw_text=f"answer to {user}", prompt_tokens=7, completion_tokens=3))
        return out


def convs(*users: str) -> list[list[dict[str, Any]]]:
    return [[{"role": "user", "content": u}] for u in users]


def test_second_run_makes_zero_teacher_calls(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "c.sqlite")
    inner = CountingBackend()
    backend = CachedBackend(inner, cache)
    first = asyncio.run(backend.generate(convs("a", "b", "c"), None, PARAMS))
    assert inner.calls == 1 and inner.seen == ["a", "b", "c"] and not any(c.cached for c in first)
    # A new process would open a new cache object on the same file.
    again = CachedBackend(inner, RequestCache(tmp_path / "c.sqlite"))
    second = asyncio.run(again.generate(convs("a", "b", "c"), None, PARAMS))
    assert inner.calls == 1, "no repeated teacher call"
    assert again.stats == {"hits": 3, "misses": 0, "inner_calls": 0}
    assert all(c.cached for c in second)
    assert [c.message for c in second] == [c.message for c in first]
    assert [c.prompt_tokens for c in second] == [7, 7, 7]


def test_only_misses_reach_the_teacher_in_one_batch(tmp_path: Path) -> None:
    inner = CountingBackend()
    backend = CachedBackend(inner, RequestCache(tmp_path / "c.sqlite"))
    asyncio.run(backend.generate(convs("a", "b"), None, PARAMS))
    out = asyncio.run(backend.generate(convs("b", "x", "a", "y"), None, PARAMS))
    assert inner.calls == 2 and inner.seen[2:] == ["x", "y"]
    assert [c.cached for c in out] == [True, False, True, False]
    assert [c.message["content"] for c in out] == ["answer to b", "answer to x", "answer to a", "answer to y"]


def test_failures_are_not_cached(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "c.sqlite")
    inner = CountingBackend(fail={"flaky"})
    backend = CachedBackend(inner, cache)
    out = asyncio.run(backend.generate(convs("ok", "flaky"), None, PARAMS))
    assert out[1].error and len(cache) == 1
    inner.fail.clear()
    retry = asyncio.run(backend.generate(convs("ok", "flaky"), None, PARAMS))
    assert inner.seen[-1] == "flaky" and inner.seen.count("ok") == 1  # only the failure was retried
    assert retry[1].message["content"] == "answer to flaky" and len(cache) == 2


def test_key_covers_everything_that_changes_the_answer() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    base = request_key("openai", "m", msgs, None, PARAMS)
    assert base == request_key("openai", "m", [dict(msgs[0])], [], PARAMS)  # stable; no tools == []
    variants = [
        request_key("vllm", "m", msgs, None, PARAMS),
        request_key("openai", "m2", msgs, None, PARAMS),
        request_key("openai", "m", [{"role": "user", "content": "hi!"}], None, PARAMS),
        request_key("openai", "m", msgs, [tool], PARAMS),
        request_key("openai", "m", msgs, None, PARAMS.model_copy(update={"seed": 2})),
        request_key("openai", "m", msgs, None, PARAMS.model_copy(update={"temperature": 0.0})),
        request_key("openai", "m", msgs, None, PARAMS, extra={"chat_template": "other"}),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_no_secrets_in_the_cache_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    backend = CachedBackend(CountingBackend(), RequestCache(path))
    asyncio.run(backend.generate(convs("a"), None, PARAMS))
    backend.cache.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # the db and its WAL
    assert b"answer to a" in blob and SECRET.encode() not in blob


def _writer(path: str, worker: int, n: int) -> None:
    cache = RequestCache(path)
    for i in range(n):
        c = Completion(message={"role": "assistant", "content": f"w{worker}-{i}"}, raw_text="x")
        cache.put(f"w{worker}-{i}", "b", "m", c)
        cache.put("shared", "b", "m", c)  # everyone also hammers one key


def test_concurrent_writers_processes_and_threads(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    RequestCache(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(4)]
    threads = [threading.Thread(target=_writer, args=(path, w, 40)) for w in range(4, 7)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = RequestCache(path)
    assert len(cache) == 7 * 40 + 1
    got = cache.get_many([f"w{w}-{i}" for w in range(7) for i in range(40)])
    assert all(got[f"w{w}-{i}"].message["content"] == f"w{w}-{i}" for w in range(7) for i in range(40))
    assert cache.get("shared").message["content"].startswith("w")
