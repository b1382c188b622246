"""The build folder: where every file of a build lives, and the markers that make it resumable.

    data/{sft,rl,eval}-NNNNN-of-MMMMM.parquet
                                       the splits, one shard per chunk at most: NNNNN is the chunk, MMMMM the
                                       build's number of chunks (a chunk being written, or of a build that has not
                                       finished, is `{split}-NNNNN.parquet`). The Hub's sharded names: `datasets`
                                       reads the split names from them even without the card's `configs`
    rejects/rejects-NNNNN-of-MMMMM.parquet
                                       every prompt that did not make it
    stats/, README.md                  statistics, plots and the dataset card
    .ascl/build.json                   which recipe owns the folder (its fingerprint and its sources' content):
                                       the marker that proves the package made the folder
    .ascl/lock                         held (flock) by the build writing into the folder, with its pid
    .ascl/chunks/NNNNN.json            one marker per committed chunk, with its counts
    .ascl/runs.jsonl                   an audit line per run
    .ascl/cache/requests.sqlite        the teacher request cache (default place)

Everything under `.ascl/` is build state: never uploaded, never part of the dataset.

Safety of the user's files: a folder without the marker is never written into or cleared, `--overwrite` or
not; clearing a folder of ours removes only what a build writes (shards by name, stats, card, markers).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ascl_data.errors import FatalError, InputError, Problem

STATE_DIR = ".ascl"
SHARD = re.compile(r"^(sft|rl|eval|rejects)-(\d{5})(?:-of-(\d{5}))?\.parquet$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a reader sees the old file or the new one.
    A full disk or a folder that cannot be written is a FatalError that says so (the build resumes later)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise FatalError(f"the disk is full: cannot write {path} ({exc.strerror}). Free space and run the build "
                             "again: it resumes at the chunk it was writing.") from None
        raise FatalError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, json.dumps(payload, sort_keys=True).encode())


_HELD: dict[Path, IO[str]] = {}  # the folder locks this process holds, by lock file


def _changed_sources(before: dict[str, str] | None, now: dict[str, str] | None) -> str | None:
    """The first source whose content id differs between the folder's marker and this run (None if none did, or
    if either side does not record them)."""
    if not before or not now:
        return None
    return next((name for name in sorted(set(before) | set(now)) if before.get(name) != now.get(name)), None)


@dataclass(frozen=True)
class Layout:
    """The paths of one build folder; the only place that knows them."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def build_marker(self) -> Path:
        return self.state / "build.json"

    @property
    def runs_log(self) -> Path:
        return self.state / "runs.jsonl"

    @property
    def default_cache(self) -> Path:
        return self.state / "cache" / "requests.sqlite"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def stats_dir(self) -> Path:
        return self.root / "stats"

    def chunk_marker(self, index: int) -> Path:
        return self.state / "chunks" / f"{index:05d}.json"

    def shard(self, split: str, index: int, n_chunks: int | None = None) -> Path:
        """The shard of `split` written by chunk `index`: while the build runs, `{split}-NNNNN.parquet`; once it has
        finished with `n_chunks` chunks, `{split}-NNNNN-of-MMMMM.parquet`."""
        total = "" if n_chunks is None else f"-of-{n_chunks:05d}"
        return self.root / ("rejects" if split == "rejects" else "data") / f"{split}-{index:05d}{total}.parquet"

    def shards(self, split: str) -> list[Path]:
        """The shards of one split (`sft`, `rl`, `eval`, `rejects`), in order."""
        folder = self.root / ("rejects" if split == "rejects" else "data")
        found = [p for p in folder.glob(f"{split}-*.parquet") if SHARD.match(p.name)] if folder.is_dir() else []
        return sorted(found, key=lambda p: p.name)

    def chunk_shards(self, split: str, index: int) -> list[Path]:
        """The files chunk `index` holds for `split`, under either name (a finished build's or a running one's)."""
        return [p for p in self.shards(split) if int(SHARD.match(p.name).group(2)) == index]  # type: ignore[union-attr]

    def user_files(self) -> list[str]:
        """What a user gets (and a push uploads): every file but build state and temporary files, sorted."""
        out = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if not path.is_file() or rel.parts[0] in (STATE_DIR, ".cache") or "__pycache__" in rel.parts:
                continue
            if path.name.startswith(".") and ".tmp-" in path.name:
                continue
            out.append(rel.as_posix())
        return out

    # -- ownership ---------------------------------------------------------------
    @property
    def lock_file(self) -> Path:
        return self.state / "lock"

    def _problem(self, message: str) -> InputError:
        return InputError("output", [Problem(str(self.root), "output.dir", message)])

    def _check_writable(self) -> None:
        """The folder can be made and written: not a file, not below a file, not read-only."""
        if self.root.is_file():
            raise self._problem("is a file, not a folder; choose a folder for the build")
        parent = next((p for p in self.root.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise self._problem(f"cannot be made: {parent} is a file, not a folder")
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            probe = self.state / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            why = {errno.EROFS: "is on a read-only file system", errno.EACCES: "cannot be written (permission denied)",
                   errno.EPERM: "cannot be written (permission denied)", errno.ENOSPC: "is on a full disk"}
            raise self._problem(why.get(exc.errno or 0, f"cannot be written: {exc.strerror or exc}")) from None

    def _is_foreign(self) -> bool:
        """A non-empty folder without the marker: made by someone else, so never ours to write into or clear."""
        if not self.root.is_dir() or self.build_marker.is_file():
            return False
        return any(p.name != STATE_DIR for p in self.root.iterdir())

    def claim(self, fingerprint: str, payload: dict[str, Any], overwrite: bool) -> None:
        """Make the folder this recipe's: refuse a folder the package did not make (whatever `overwrite` says),
        take the lock, resume a build of the same recipe and sources, and replace a build of another only with
        `overwrite` (the teacher cache is kept either way)."""
        if self._is_foreign():
            raise self._problem(
                "exists, is not empty and was not made by `ascl-data build` (it has no .ascl/build.json), so "
                "nothing in it is written or removed; choose a new or empty folder")
        self._check_writable()
        self.lock()
        self._remove_stale_temp_files()
        if self.build_marker.is_file():
            previous = json.loads(self.build_marker.read_text())
            if previous.get("recipe_hash") != fingerprint:
                if not overwrite:
                    raise self._problem(
                        f"holds a build of another recipe (hash {previous.get('recipe_hash')}, this one is "
                        f"{fingerprint}); pass --overwrite to replace it (the teacher cache is kept)")
                self.clear()
            elif (changed := _changed_sources(previous.get("sources"), payload.get("sources"))) and not overwrite:
                raise self._problem(
                    f"was built from other content of {changed} (its content changed since this build began); "
                    "resuming would mix old and new prompts. Pass --overwrite to start the build over (the teacher "
                    "cache is kept: unchanged prompts cost no teacher call), or restore the source")
            elif changed:
                self.clear()
        elif overwrite:
            self.clear()
        atomic_write_bytes(self.build_marker,
                           (json.dumps({"recipe_hash": fingerprint, **payload}, indent=2, sort_keys=True) + "\n").encode())

    def _remove_stale_temp_files(self) -> None:
        """Temporary files of `atomic_write_bytes` that a killed build left (we hold the lock: no writer is live)."""
        for tmp in self.root.rglob(".*.tmp-*"):
            if tmp.is_file():
                tmp.unlink()

    def clear(self) -> None:
        """Remove what an earlier build wrote (shards by name, stats, card, markers), never other files in the folder
        and not the cache. Only called on a folder with the marker."""
        for folder in (self.root / "data", self.root / "rejects"):
            if folder.is_dir():
                for shard in folder.iterdir():
                    if SHARD.match(shard.name) and shard.is_file():
                        shard.unlink()
                if not any(folder.iterdir()):
                    folder.rmdir()
        for path in (self.stats_dir, self.card, self.state / "chunks", self.build_marker):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

    def lock(self) -> None:
        """Hold the folder's lock for the life of this process (or until `release`): a second build into the same
        folder is refused while the first runs. The lock is an flock, so a build that dies (even by SIGKILL) leaves
        no lock behind: the next build takes it over."""
        key = self.lock_file.resolve()
        if key in _HELD:
            return  # this process holds it already (a build run twice in one process)
        fh = open(self.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held open while the build runs
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "?"
            fh.close()
            raise self._problem(f"another build (pid {owner}) is writing into this folder; wait for it to end or "
                                "stop it (it resumes later), or build into another folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        _HELD[key] = fh

    def release(self) -> None:
        """Let go of the folder's lock (it also goes when the process ends)."""
        fh = _HELD.pop(self.lock_file.resolve(), None)
        if fh is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    # -- chunks ------------------------------------------------------------------
    def committed(self, index: int) -> dict[str, Any] | None:
        """The counts a committed chunk recorded, or None when it has to run."""
        marker = self.chunk_marker(index)
        return json.loads(marker.read_text()) if marker.is_file() else None

    def commit(self, index: int, counts: dict[str, Any]) -> None:
        """The last write of a chunk: after it, a resumed build skips the chunk."""
        write_json(self.chunk_marker(index), counts)

    def log_run(self, record: dict[str, Any]) -> None:
        with open(self.runs_log, "a", encoding="utf-8") as fh:  # an audit log, never uploaded
            fh.write(json.dumps(record, sort_keys=True) + "\n")
