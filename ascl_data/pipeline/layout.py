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
    .ascl/chunks/NNNNN.json            one marker per committed chunk, with its counts and its shards' sizes and
                                       hashes (a resume checks them: a chunk whose shards are gone is built again)
    .ascl/written.json                 the other files the build wrote (stats, card...): what `--overwrite` removes
    .ascl/runs.jsonl                   an audit line per run
    .ascl/cache/requests.sqlite        the teacher request cache (default place)

Everything under `.ascl/` is build state: never uploaded, never part of the dataset.

Safety of the user's files: a folder without the marker is never written into or cleared, `--overwrite` or
not; clearing a folder of ours removes only what a build wrote, file by file and by name (shards, the files
listed in `.ascl/written.json`, markers), never through a symbolic link: a build folder whose `data/`, `rejects/`,
`stats/` or `.ascl/` is a link is refused before anything is written or removed. Temporary files carry the
package's own suffix (`.NAME.ascl-tmp-PID`) and only those, only in the build's own folders, are cleaned up.
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash
from filelock import FileLock, Timeout

from ascl_data.errors import FatalError, InputError, Problem
from ascl_data.judge.config import JUDGE_CONFIG_FILE, JudgeConfig

STATE_DIR = ".ascl"
SHARD = re.compile(r"^(sft|rl|eval|rejects)-(\d{5})(?:-of-(\d{5}))?\.parquet$")
CHUNK_MARKER = re.compile(r"^\d{5}\.json$")
TEMP = re.compile(r"^\..+\.ascl-tmp-\d+$")  # `temp_path`: the package's own temporary names, nobody else's
_LEGACY_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-\d+$")  # before the suffix was the package's own
# what a build wrote outside data/ and rejects/ before `.ascl/written.json` recorded it
_LEGACY_WRITTEN = ("README.md", "judge.json", "stats/stats.json", "stats/consultation_by_kind.png",
                   "stats/rejections.png", "stats/answer_lengths.png", "stats/categories.png")
_LEGACY_NAMES = {Path(rel).name for rel in _LEGACY_WRITTEN} | {"build.json", "written.json"}


def temp_path(path: Path) -> Path:
    """The temporary file `atomic_write_bytes` writes beside `path` before renaming it into place."""
    return path.with_name(f".{path.name}.ascl-tmp-{os.getpid()}")


def is_temp(name: str) -> bool:
    """A temporary file of this package (a killed build may leave one), by its name alone."""
    if TEMP.match(name):
        return True
    legacy = _LEGACY_TEMP.match(name)  # left by a build of an earlier version: only the names builds write
    if legacy is None:
        return False
    base = legacy.group("name")
    return bool(SHARD.match(base) or CHUNK_MARKER.match(base)) or base in _LEGACY_NAMES


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a reader sees the old file or the new one.
    A full disk or a folder that cannot be written is a FatalError that says so (the build resumes later)."""
    tmp = temp_path(path)
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


def write_judge_config(root: str | Path, config: JudgeConfig) -> Path:
    """Record the judge config a build used in its folder, so training and eval score by the same rule."""
    path = Path(root) / JUDGE_CONFIG_FILE
    atomic_write_bytes(path, (config.model_dump_json(indent=2) + "\n").encode())
    return path


def write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, json.dumps(payload, sort_keys=True).encode())


_HELD: dict[Path, FileLock] = {}  # the folder locks this process holds, by lock file


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

    @property
    def chunks_dir(self) -> Path:
        return self.state / "chunks"

    @property
    def written_list(self) -> Path:
        return self.state / "written.json"

    @property
    def own_dirs(self) -> tuple[Path, ...]:
        """The folders a build writes into: the only ones it cleans up, and never symbolic links."""
        return (self.root, self.root / "data", self.root / "rejects", self.stats_dir, self.state, self.chunks_dir)

    def chunk_marker(self, index: int) -> Path:
        return self.chunks_dir / f"{index:05d}.json"

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

    def split_files(self, split: str) -> list[Path]:
        """The parquet files of one split in any folder a reader is given: a build's shards (`shards`), else the
        common layouts of a dataset folder (the Hub's `data/{split}-*.parquet`, one folder or one file per split)."""
        files = self.shards(split)
        for pattern in (f"data/{split}-*.parquet", f"{split}/*.parquet", f"{split}-*.parquet", f"{split}.parquet"):
            files = files or sorted(self.root.glob(pattern))
        return files

    def chunk_shards(self, index: int, split: str | None = None) -> list[Path]:
        """The shards chunk `index` has on disk (of `split`, or of every split), under either name: a finished
        build's `-of-MMMMM` or a running one's."""
        out = []
        for folder in (self.root / "data", self.root / "rejects"):
            if folder.is_dir():
                out += [p for p in folder.iterdir() if (m := SHARD.match(p.name)) and int(m.group(2)) == index
                        and split in (None, m.group(1))]
        return sorted(out)

    def user_files(self) -> list[str]:
        """What a user gets (and a push uploads): every regular file but build state and temporary files, sorted.
        A symbolic link is never followed (it may point anywhere: a key, a home folder), nor listed."""
        out = []
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            rel_dir = here.relative_to(self.root)
            dirs[:] = [d for d in dirs if not (here / d).is_symlink() and d != "__pycache__"
                       and not (rel_dir == Path(".") and d in (STATE_DIR, ".cache"))]
            for name in files:
                path = here / name
                if path.is_symlink() or not path.is_file() or is_temp(name):
                    continue
                out.append((rel_dir / name).as_posix())
        return sorted(out)

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

    def _check_no_links(self) -> None:
        """The folders a build writes into are real folders inside it: a link would carry its writes, and the
        removal of its old files, somewhere else. Checked before anything is written or removed."""
        for path in self.own_dirs[1:]:
            if path.is_symlink():
                raise self._problem(
                    f"{path.relative_to(self.root)}/ is a symbolic link (to {os.readlink(path)}); a build writes and "
                    "removes files only in real folders inside its own folder, so nothing was touched. Replace the "
                    "link with a folder, or build into another folder")

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
        self._check_no_links()
        self._check_writable()
        self.lock()
        self._remove_stale_temp_files()
        if self.build_marker.is_file():
            previous = self._read_json(self.build_marker)
            if previous is None:
                if not overwrite:
                    raise self._problem(
                        f"{STATE_DIR}/build.json cannot be read (it is not the JSON a build writes), so which recipe "
                        "made this folder is unknown; pass --overwrite to start the build over (the teacher cache is "
                        "kept: finished requests cost nothing)")
                self.clear()
            elif previous.get("recipe_hash") != fingerprint:
                if not overwrite:
                    raise self._problem(
                        f"holds a build of another recipe (hash {previous.get('recipe_hash')}, this one is "
                        f"{fingerprint}); pass --overwrite to replace it (the teacher cache is kept)")
                self.clear()
            elif previous.get("row_schema") != payload.get("row_schema"):
                if not overwrite:
                    raise self._problem(
                        "was built by a version of ascl-data whose rows have other columns or types (row schema "
                        f"{previous.get('row_schema', 'not recorded')}, this version writes {payload.get('row_schema')}), "
                        "so resuming would mix two row layouts in one dataset; pass --overwrite to build it again (the "
                        "teacher cache is kept: finished requests cost nothing)")
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

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        """A marker's content; None when it cannot be read or is not a JSON object (a damaged or foreign file)."""
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _remove_stale_temp_files(self) -> None:
        """Temporary files of `atomic_write_bytes` that a killed build left (we hold the lock: no writer is live):
        only the package's own temporary names, only in the folders a build writes into."""
        for folder in self.own_dirs:
            if folder.is_dir() and not folder.is_symlink():
                for path in folder.iterdir():
                    if is_temp(path.name) and path.is_file() and not path.is_symlink():
                        path.unlink()

    def _own_file(self, rel: str) -> Path | None:
        """`root/rel` if it is a regular file reached without any symbolic link, inside the folder; else None."""
        path = self.root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            return None
        for part in (path, *path.parents):
            if part == self.root:
                break
            if part.is_symlink():
                return None
        return path if path.is_file() else None

    def written(self) -> list[str]:
        """The files (relative paths) a build wrote besides its shards and markers, as `.ascl/written.json` records
        them; for a folder built before that record existed, the names builds wrote then."""
        if not self.written_list.is_file():
            return list(_LEGACY_WRITTEN)
        data = self._read_json(self.written_list) or {}
        return [f for f in data.get("files", []) if isinstance(f, str)]

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        """Each user file's identity (inode, size, mtime): compared by `record_written` after the build writes its
        stats and card (an atomic write makes a new inode), so whatever those steps write is recorded by name."""
        out = {}
        for rel in self.user_files():
            st = (self.root / rel).stat()
            out[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return out

    def record_written(self, before: dict[str, tuple[int, int, int]]) -> None:
        """Add the files written since `before` (outside data/ and rejects/ shards) to `.ascl/written.json`: the
        list `clear` removes by name, never a file the user put in the folder."""
        now = self.snapshot()
        new = {rel for rel, ident in now.items() if before.get(rel) != ident}
        keep = {rel for rel in self.written() if rel in now} if self.written_list.is_file() else set()
        files = sorted((keep | new) - {rel for rel in now if SHARD.match(Path(rel).name)})
        write_json(self.written_list, {"files": files})

    def clear(self) -> None:
        """Remove what an earlier build wrote, file by file and by name, never other files in the folder and not
        the cache. The chunk markers go first: a clear that fails half-way leaves no marker that vouches for a
        shard it removed. Then the shards, the files `.ascl/written.json` lists (stats, card...), the folders they
        leave empty, and the markers. Symbolic links are never followed (`claim` refuses linked folders)."""
        self._check_no_links()
        if self.chunks_dir.is_dir():
            for marker in self.chunks_dir.iterdir():
                if CHUNK_MARKER.match(marker.name) and marker.is_file() and not marker.is_symlink():
                    marker.unlink()
        for folder in (self.root / "data", self.root / "rejects"):
            if folder.is_dir():
                for shard in folder.iterdir():
                    if SHARD.match(shard.name) and shard.is_file() and not shard.is_symlink():
                        shard.unlink()
        for rel in self.written():
            if (path := self._own_file(rel)) is not None:
                path.unlink()
        for folder in (self.root / "data", self.root / "rejects", self.stats_dir, self.chunks_dir):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        for marker in (self.written_list, self.build_marker):
            marker.unlink(missing_ok=True)

    def lock(self) -> None:
        """Hold the folder's lock for the life of this process (or until `release`): a second build into the same
        folder is refused while the first runs. The lock is the operating system's (`filelock`: flock on POSIX,
        LockFileEx on Windows), so a build that dies (even by SIGKILL) leaves no lock behind: the next build takes it
        over. The file holds the holder's pid, for the refusal's message."""
        key = self.lock_file.resolve()
        if key in _HELD:
            return  # this process holds it already (a build run twice in one process)
        held = FileLock(self.lock_file, timeout=0, thread_local=False)
        try:
            held.acquire()
        except Timeout:
            try:
                owner = self.lock_file.read_text(encoding="utf-8").strip() or "?"
            except OSError:  # Windows: the holder's lock covers the file's bytes
                owner = "?"
            raise self._problem(f"another build (pid {owner}) is writing into this folder; wait for it to end or "
                                "stop it (it resumes later), or build into another folder") from None
        try:
            with open(self.lock_file, "r+", encoding="utf-8") as fh:  # filelock leaves the holder its file's contents
                fh.truncate()
                fh.write(f"{os.getpid()}\n")
        except OSError:  # Windows: the lock covers the file's bytes; the refusal then names no pid
            pass
        _HELD[key] = held

    def release(self) -> None:
        """Let go of the folder's lock (it also goes when the process ends)."""
        held = _HELD.pop(self.lock_file.resolve(), None)
        if held is not None:
            held.release()

    # -- chunks ------------------------------------------------------------------
    def committed(self, index: int) -> dict[str, Any] | None:
        """The counts a committed chunk recorded, or None when it has to run (never committed, or its shards are
        not those its marker records: see `chunk_state`)."""
        return self.chunk_state(index)[0]

    def chunk_state(self, index: int) -> tuple[dict[str, Any] | None, str | None]:
        """(counts, None) for a committed chunk whose shards are on disk as its marker records them (size and
        hash); (None, why) for a marker that cannot be trusted (unreadable, or a shard missing, changed or extra):
        the chunk is built again, its teacher answers from the cache; (None, None) for a chunk never committed."""
        marker = self.chunk_marker(index)
        if not marker.is_file():
            return None, None
        data = self._read_json(marker)
        if data is None:
            return None, f"its marker {marker.relative_to(self.root)} cannot be read"
        shards = data.pop("shards", None)
        on_disk = {_shard_key(p): p for p in self.chunk_shards(index)}
        if shards is None:  # a marker written before markers recorded shards: each split it counts has its shard
            expected = {_shard_key(self.shard(split, index)): self.shard(split, index).relative_to(self.root)
                        for split in ("sft", "rl", "eval", "rejects") if data.get(split)}
            missing = sorted(str(rel) for key, rel in expected.items() if key not in on_disk)
            return (None, f"{missing[0]} is missing") if missing else (data, None)
        for rel, info in sorted(shards.items()):
            path = on_disk.pop(_shard_key(Path(rel)), None)
            if path is None:
                return None, f"{rel} is missing"
            if path.stat().st_size != info.get("size") or _digest(path) != info.get("xxh3"):
                shown = path.relative_to(self.root).as_posix()
                return None, f"{shown} is not the file the build wrote (its size or content changed)"
        if on_disk:
            return None, f"{sorted(on_disk)[0]} was not written by this chunk"
        return data, None

    def damaged_chunks(self) -> list[str]:
        """Every committed chunk whose shards are not as its marker records, each as `chunk N: why` (a push checks
        this: a truncated shard would be uploaded, or fail half-way)."""
        if not self.chunks_dir.is_dir():
            return []
        out = []
        for marker in sorted(self.chunks_dir.iterdir()):
            if CHUNK_MARKER.match(marker.name):
                index = int(marker.stem)
                if (why := self.chunk_state(index)[1]) is not None:
                    out.append(f"chunk {index}: {why}")
        return out

    def commit(self, index: int, counts: dict[str, Any]) -> None:
        """The last write of a chunk: after it, a resumed build skips the chunk. The marker records each shard's
        size and hash, so a resume notices a shard deleted, truncated or replaced since."""
        shards = {p.relative_to(self.root).as_posix(): {"size": p.stat().st_size, "xxh3": _digest(p)}
                  for p in self.chunk_shards(index)}
        write_json(self.chunk_marker(index), {**counts, "shards": shards})

    def log_run(self, record: dict[str, Any]) -> None:
        with open(self.runs_log, "a", encoding="utf-8") as fh:  # an audit log, never uploaded
            fh.write(json.dumps(record, sort_keys=True) + "\n")


def _shard_key(path: Path) -> str:
    """A shard by folder, split and chunk, whatever its name's `-of-MMMMM` (a finished build renames its shards)."""
    m = SHARD.match(path.name)
    return f"{path.parent.name}/{m.group(1)}-{m.group(2)}" if m else path.as_posix()


def _digest(path: Path) -> str:
    """A fast hash of a file's bytes (xxh3, 64 bits): enough to tell a changed shard, read in 1 MiB blocks."""
    h = xxhash.xxh3_64()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()
