"""A persistent request cache for teacher calls, so an interrupted build resumes with zero repeated calls.

Keyed by sha256 of (backend, model, messages, tools, sampling parameters including the seed); one SQLite file in
WAL mode, safe for several processes and threads writing at once. Only successful completions are stored (a
failure is retried next time), and only the completion: no API keys, headers or base URLs ever reach it, and
its texts pass through `ascl_data.secrets.scrub` first.

A fault of the cache itself (a corrupt page, a file that is not a database, a full disk) raises `FatalError`
naming the file and what to do: it must stop the build, never turn the teacher's answers into rejections.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from ascl_data.backends.base import MAX_USAGE_TOKENS, Backend, Completion, SamplingParams
from ascl_data.embedded import cache_home
from ascl_data.errors import FatalError
from ascl_data.secrets import scrub_json

T = TypeVar("T")
_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CORRUPT_INDEX", "SQLITE_CORRUPT_SEQUENCE", "SQLITE_CORRUPT_VTAB"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    return cache_home() / "requests.sqlite"


def request_key(
    backend: str,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    params: SamplingParams,
    extra: dict[str, Any] | None = None,
) -> str:
    """The identity of a request: everything that changes the answer, nothing that does not (or is secret)."""
    payload = {
        "backend": backend,
        "model": model,
        "messages": messages,
        "tools": tools or [],
        # `auto` (the default policy) is left out, so keys made before the policy existed still hit
        "params": params.model_dump(mode="json", exclude={"consult"} if params.consult == "auto" else None),
        "extra": extra or {},
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def cacheable(completion: Completion) -> bool:
    """A model answer (even one whose tool calls fail to parse) is kept; a failure of the backend is not."""
    return completion.error is None and (completion.message is not None or bool(completion.raw_text))


class RequestCache:
    """Completions by request key in one SQLite file; one connection per thread and process."""

    def __init__(self, path: str | Path | None = None, timeout_s: float = 60.0):
        self.path = Path(path) if path is not None else default_cache_path()
        self.timeout_s = timeout_s
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FatalError(
                f"cannot make the folder of the request cache {self.path}: {exc.strerror or exc}"
            ) from None
        self._guard("open", lambda: self._conn().execute(_SCHEMA))

    def fault(self, exc: BaseException, doing: str) -> FatalError:
        """The error a cache fault stops the build with: the file, the real cause and how to recover."""
        name = getattr(exc, "sqlite_errorname", "")
        cause = f"{type(exc).__name__}: {exc}"
        if name == "SQLITE_FULL" or "disk is full" in str(exc) or getattr(exc, "errno", None) == 28 or (
            name.startswith("SQLITE_IOERR") and _nearly_full(self.path.parent)  # SQLite's WAL index says "I/O error"
        ):
            return FatalError(
                f"the request cache {self.path} could not {doing}: the disk is full ({cause}). Free space on the "
                "disk that holds it and run the build again: it resumes where it stopped."
            )
        text = str(exc)
        if name in _CORRUPT or isinstance(exc, ValidationError) or "malformed" in text or "not a database" in text:
            return FatalError(
                f"the request cache {self.path} is corrupt ({cause}). Delete it to start the cache over: the build "
                "resumes, re-asking the teacher for the answers the cache held."
            )
        return FatalError(f"the request cache {self.path} could not {doing} ({cause}); nothing was lost: fix the "
                          "cause and run the build again, it resumes where it stopped.")

    def _guard(self, doing: str, op: Callable[[], T]) -> T:
        try:
            return op()
        except (sqlite3.Error, ValidationError, OSError) as exc:
            raise self.fault(exc, doing) from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():  # never reuse a connection across fork
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys = list(dict.fromkeys(keys))
        return self._guard("read", lambda: self._get_many(keys))

    def _get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        conn = self._conn()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in conn.execute(f"SELECT key, completion FROM completions WHERE key IN ({marks})", chunk):
                completion = Completion.model_validate_json(blob)
                if _usage_ok(completion):  # else a miss: asked again, not a crash at every rerun
                    found[key] = completion
        return found

    def get(self, key: str) -> Completion | None:
        return self.get_many([key]).get(key)

    def put_many(self, items: Iterable[tuple[str, str, str, Completion]]) -> int:
        """Store (key, backend, model, completion) rows in one transaction; failures are skipped. Returns rows stored."""
        rows = [
            (key, backend, model, _stored(completion), time.time())
            for key, backend, model, completion in items
            if cacheable(completion)
        ]
        if not rows:
            return 0
        self._guard("write", lambda: self._insert(rows))
        return len(rows)

    def _insert(self, rows: list[tuple[str, str, str, str, float]]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (a full disk does): a second ROLLBACK would raise "cannot
            # rollback - no transaction is active" and hide the real cause
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def put(self, key: str, backend: str, model: str, completion: Completion) -> bool:
        return self.put_many([(key, backend, model, completion)]) == 1

    def __len__(self) -> int:
        return self._guard("count", lambda: int(self._conn().execute("SELECT COUNT(*) FROM completions").fetchone()[0]))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _usage_ok(completion: Completion) -> bool:
    """Token counts a shard can hold: an answer cached before usage was checked where it comes in may carry a broken
    server's count (negative, or 10^30)."""
    return all(0 <= n <= MAX_USAGE_TOKENS for n in (completion.prompt_tokens, completion.completion_tokens))


def _nearly_full(folder: Path) -> bool:
    """Less than 1 MiB free where the cache lives: an I/O error there is most likely the full disk."""
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _stored(completion: Completion) -> str:
    """A completion as the cache stores it: not marked cached, every text scrubbed of secrets."""
    data = completion.model_copy(update={"cached": False}).model_dump(mode="json")
    return json.dumps(scrub_json(data), ensure_ascii=False, separators=(",", ":"))


class CachedBackend(Backend):
    """Any backend behind the cache: hits come back with `cached=True`, only misses reach the teacher, in one batch.

    A backend may define `cache_identity() -> dict` for settings that change its answers beyond name and model
    (a chat template, a revision); it must hold nothing secret.
    """

    def __init__(self, backend: Backend, cache: RequestCache):
        self.inner = backend
        self.cache = cache
        self.name = backend.name
        self.model = backend.model
        self.hits = 0
        self.misses = 0
        self.inner_calls = 0  # generate() calls that reached the teacher

    def _identity(self) -> dict[str, Any]:
        ident = getattr(self.inner, "cache_identity", None)
        return dict(ident()) if callable(ident) else {}

    async def generate(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        extra = self._identity()
        keys = [request_key(self.inner.name, self.inner.model, conv, tools, params, extra) for conv in conversations]
        found = self.cache.get_many(keys)
        results: list[Completion | None] = [None] * len(conversations)
        misses = []
        for i, key in enumerate(keys):
            if key in found:
                results[i] = found[key].model_copy(update={"cached": True})
            else:
                misses.append(i)
        self.hits += len(conversations) - len(misses)
        self.misses += len(misses)
        if misses:
            self.inner_calls += 1
            fresh = await self.inner.generate([conversations[i] for i in misses], tools, params)
            if len(fresh) != len(misses):
                raise RuntimeError(f"{self.inner.name} returned {len(fresh)} completions for {len(misses)} conversations")
            self.cache.put_many((keys[i], self.inner.name, self.inner.model, c) for i, c in zip(misses, fresh))
            for i, completion in zip(misses, fresh):
                results[i] = completion
        return [r for r in results if r is not None]

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "inner_calls": self.inner_calls}
