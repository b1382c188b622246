"""The request cache: resume with zero repeated teacher calls, failures retried, concurrent writers, no secrets;
and its own faults (a corrupt page, a garbage or truncated file, a full disk) stop the build with the file named
and how to recover, never as rejections."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ascl_data.backends.base import Completion, SamplingParams
from ascl_data.cache import CachedBackend, RequestCache, request_key
from ascl_data.errors import FatalError
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.tool_loop import run_tool_loop
from helpers import ScriptedBackend

PARAMS = SamplingParams(temperature=0.7, max_tokens=32, seed=1)
SECRET = "sk-test-THIS-MUST-NOT-LEAK-0123456789"


def answers(fail: set[str] = frozenset()) -> Callable[[list[dict[str, Any]], Any], Completion]:
    """The teacher's rule: answer each last user turn, or fail it with a server error while it is in `fail` (the
    set is read at each call, so clearing it heals the teacher)."""

    def reply(conversation: list[dict[str, Any]], tools: Any) -> Completion:
        user = conversation[-1]["content"]
        if user in fail:
            return Completion(error="HTTP 503 after retries")
        return Completion(message={"role": "assistant", "content": f"answer to {user}"}, raw_text=f"answer to {user}",
                          prompt_tokens=7, completion_tokens=3)

    return reply


class KeyedBackend(ScriptedBackend):
    """The scripted teacher holding an API key and headers, as a real client does, to check they never reach the
    cache."""

    def __init__(self, script: Callable[[list[dict[str, Any]], Any], Completion]):
        super().__init__(script, model="teacher-1")
        self.api_key = SECRET
        self.headers = {"Authorization": f"Bearer {SECRET}"}


def teacher(fail: set[str] = frozenset()) -> KeyedBackend:
    return KeyedBackend(answers(fail))


def calls(backend: ScriptedBackend) -> int:
    """How many requests reached the teacher (the point is the call count, not the text)."""
    return len(backend.batches)


def seen(backend: ScriptedBackend) -> list[str]:
    """The user turns that reached the teacher, in order."""
    return [c[-1]["content"] for batch in backend.batches for c in batch]


def convs(*users: str) -> list[list[dict[str, Any]]]:
    return [[{"role": "user", "content": u}] for u in users]


def test_second_run_makes_zero_teacher_calls(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "c.sqlite")
    inner = teacher()
    backend = CachedBackend(inner, cache)
    first = asyncio.run(backend.generate(convs("a", "b", "c"), None, PARAMS))
    assert calls(inner) == 1 and seen(inner) == ["a", "b", "c"] and not any(c.cached for c in first)
    # A new process would open a new cache object on the same file.
    again = CachedBackend(inner, RequestCache(tmp_path / "c.sqlite"))
    second = asyncio.run(again.generate(convs("a", "b", "c"), None, PARAMS))
    assert calls(inner) == 1, "no repeated teacher call"
    assert again.stats == {"hits": 3, "misses": 0, "inner_calls": 0}
    assert all(c.cached for c in second)
    assert [c.message for c in second] == [c.message for c in first]
    assert [c.prompt_tokens for c in second] == [7, 7, 7]


def test_only_misses_reach_the_teacher_in_one_batch(tmp_path: Path) -> None:
    inner = teacher()
    backend = CachedBackend(inner, RequestCache(tmp_path / "c.sqlite"))
    asyncio.run(backend.generate(convs("a", "b"), None, PARAMS))
    out = asyncio.run(backend.generate(convs("b", "x", "a", "y"), None, PARAMS))
    assert calls(inner) == 2 and seen(inner)[2:] == ["x", "y"]
    assert [c.cached for c in out] == [True, False, True, False]
    assert [c.message["content"] for c in out] == ["answer to b", "answer to x", "answer to a", "answer to y"]


def test_failures_are_not_cached(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "c.sqlite")
    fail = {"flaky"}
    inner = teacher(fail)
    backend = CachedBackend(inner, cache)
    out = asyncio.run(backend.generate(convs("ok", "flaky"), None, PARAMS))
    assert out[1].error and len(cache) == 1
    fail.clear()
    retry = asyncio.run(backend.generate(convs("ok", "flaky"), None, PARAMS))
    assert seen(inner)[-1] == "flaky" and seen(inner).count("ok") == 1  # only the failure was retried
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
    backend = CachedBackend(teacher(), RequestCache(path))
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


# --------------------------------------------------------------------------- the cache's own faults


def _filled(path: Path, n: int = 300) -> list[str]:
    """A closed cache file with n rows of ~1 KB (many pages), checkpointed so the WAL is empty."""
    cache = RequestCache(path)
    rows = [(f"k{i}", "b", "m", Completion(message={"role": "assistant", "content": f"{i} " + "x" * 1000}))
            for i in range(n)]
    cache.put_many(rows)
    cache.close()
    return [r[0] for r in rows]


def _assert_names_the_file_and_the_way_out(err: pytest.ExceptionInfo, path: Path) -> None:
    text = str(err.value)
    assert str(path) in text and "corrupt" in text and "Delete it to start the cache over" in text


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty_header"])
def test_a_file_that_is_not_a_cache_is_named_with_how_to_recover(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "requests.sqlite"
    _filled(path)
    data = path.read_bytes()
    path.write_bytes({"garbage": os.urandom(len(data)), "truncated": data[: len(data) // 3],
                      "empty_header": b"\0" * 100 + data[100:]}[damage])
    with pytest.raises(FatalError) as err:
        cache = RequestCache(path)
        cache.get_many([f"k{i}" for i in range(300)])  # a truncated file opens; reading its rows fails
    _assert_names_the_file_and_the_way_out(err, path)


def test_a_corrupt_page_stops_the_tool_loop_instead_of_becoming_rejections(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite"
    _filled(path)
    page = 4096
    with path.open("r+b") as fh:  # overwrite a page in the middle of the table with garbage
        fh.seek(page * 40)
        fh.write(os.urandom(page))
    cache = RequestCache(path)
    with pytest.raises(FatalError) as err:
        cache.get_many([f"k{i}" for i in range(300)])
    _assert_names_the_file_and_the_way_out(err, path)
    # through the tool loop: the build stops; no prompt becomes a backend_error rejection
    inner = teacher()
    backend = CachedBackend(inner, cache)
    convs_all = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
    with contextlib.suppress(FatalError):  # a lookup may miss the bad page; a write then hits it
        for _ in range(3):
            rule_tool = RuleTool(load_ruleset("default"))
            asyncio.run(run_tool_loop(convs_all, backend, PARAMS, tools=None, rule_tool=rule_tool))
            cache.put_many((f"k{i}", "b", "m", Completion(message={"role": "assistant", "content": "y" * 1000}))
                           for i in range(300))
        pytest.fail("a corrupt page went unnoticed")


@contextlib.contextmanager
def _tiny_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder on a real 192 KB tmpfs where the system allows mounting one (root), else a plain folder whose cache
    is held to a few pages by SQLite's own `max_page_count` (SQLite then reports SQLITE_FULL, as on a full disk)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    ok = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount)], capture_output=True
    ).returncode == 0
    try:
        yield mount, "tmpfs" if ok else "max_page_count"
    finally:
        if ok:
            subprocess.run(["umount", "--lazy", str(mount)], check=True)  # lazy: even with a file left open


def test_a_full_disk_says_so_instead_of_cannot_rollback(tmp_path: Path) -> None:
    with _tiny_disk(tmp_path) as (folder, how):
        path = folder / "requests.sqlite"
        cache = RequestCache(path)
        if how == "max_page_count":
            cache._conn().execute("PRAGMA max_page_count=8")
        backend = CachedBackend(teacher(), cache)
        with pytest.raises(FatalError) as err:
            for n in range(400):  # ~1 KB answers until the disk is full
                asyncio.run(backend.generate(convs(*(f"{n}-{i} " + "z" * 1000 for i in range(8))), None, PARAMS))
        text = str(err.value)
        assert str(path) in text and "the disk is full" in text and "resumes where it stopped" in text, text
        assert "cannot rollback" not in text
        cache.close()


def test_stored_texts_are_scrubbed(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = RequestCache(path)
    # an unparsable answer is kept with its raw text (a model answer); here it echoes a key it was shown
    leaked = Completion(message=None, raw_text=f"<tool_call>{{ key={SECRET}", finish_reason="stop")
    cache.put("k", "b", "m", leaked)
    assert cache.get("k").raw_text == "<tool_call>{ key=[REDACTED]"
    cache.close()
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_a_build_on_a_corrupt_cache_exits_non_zero_naming_it_and_recovers_once_it_is_deleted(tmp_path: Path) -> None:
    import json
    import sys

    import yaml

    from ascl_data.testing.fault_proxy import ScriptedServer, chat_answer

    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"Question {i}?", "kind": "benign"}) + "\n"
                                                    for i in range(12)))
    cache_file = tmp_path / "teacher-cache" / "requests.sqlite"

    def build(server: ScriptedServer, out: str) -> subprocess.CompletedProcess:
        recipe = {
            "name": "cache-fault", "seed": 1, "sources": [{"path": "prompts.jsonl", "license": "cc0-1.0"}],
            "splits": {"sft": 1.0}, "generators": [{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1}],
            "teacher": {"backend": "openai", "model": "m", "cache_dir": str(cache_file.parent),
                        "settings": {"base_url": server.base_url, "max_retries": 0},
                        "sampling": {"temperature": 0.0, "max_tokens": 32, "seed": 0}, "batch_size": 4},
            "output": {"dir": out, "shard_size": 50},
        }  # fmt: skip
        (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        return subprocess.run([sys.executable, "-m", "ascl_data", "build", str(tmp_path / "recipe.yaml"), "--quiet"],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "500"})

    with ScriptedServer(lambda path, headers, body: chat_answer(f"Answer to {body['messages'][-1]['content']}"
                                                                  + " with some words" * 40)) as server:
        first = build(server, "first")
        assert first.returncode == 0, first.stderr[-2000:]
        asked = len(server.chat_requests())
        data = bytearray(cache_file.read_bytes())
        data[4096 * 2 : 4096 * 3] = os.urandom(4096)  # one page of the teacher's answers
        cache_file.write_bytes(bytes(data))
        broken = build(server, "second")
        assert broken.returncode != 0 and "Traceback" not in broken.stderr
        assert str(cache_file) in broken.stderr and "Delete it to start the cache over" in broken.stderr
        assert not list((tmp_path / "second").rglob("rejects*.parquet")) or not any(
            pq.read_table(p).num_rows for p in (tmp_path / "second").rglob("rejects*.parquet"))
        cache_file.unlink()
        again = build(server, "second")
        assert again.returncode == 0, again.stderr[-2000:]
        assert len(server.chat_requests()) >= 2 * asked  # the teacher was asked again
    stats = [json.loads((tmp_path / d / "stats" / "stats.json").read_text())["rows"] for d in ("first", "second")]
    assert stats[0] == stats[1] and stats[0]["sft"] == 12


def test_opening_a_cache_on_a_full_disk_says_the_disk_is_full(tmp_path: Path) -> None:
    with _tiny_disk(tmp_path) as (folder, how):
        if how != "tmpfs":
            pytest.skip("needs a real tmpfs (root) to fill")
        (folder / "filler").write_bytes(b"\0" * (192 - 16) * 1024)  # SQLite then reports "disk I/O error"
        with pytest.raises(FatalError, match="could not open: the disk is full"):
            RequestCache(folder / "requests.sqlite")
        (folder / "filler").unlink()
