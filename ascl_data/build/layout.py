"""The build folder: where every file of a build lives, and the markers that make it resumable.

    data/{sft,rl,eval}-NNNNN.parquet   the splits, one shard per chunk at most
    rejects/rejects-NNNNN.parquet      every prompt that did not make it
    stats/, README.md                  statistics, plots and the dataset card
    .ascl/build.json                   which recipe owns the folder (its fingerprint)
    .ascl/chunks/NNNNN.json            one marker per committed chunk, with its counts
    .ascl/runs.jsonl                   an audit line per run
    .ascl/cache/requests.sqlite        the teacher request cache (default place)

Everything under `.ascl/` is build state: never uploaded, never part of the dataset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ascl_data.errors import InputError, Problem

STATE_DIR = ".ascl"
SHARD = re.compile(r"^(sft|rl|eval|rejects)-(\d{5})\.parquet$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, json.dumps(payload, sort_keys=True).encode())


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

    def shard(self, split: str, index: int) -> Path:
        return self.root / ("rejects" if split == "rejects" else "data") / f"{split}-{index:05d}.parquet"

    def shards(self, split: str) -> list[Path]:
        """The shards of one split (`sft`, `rl`, `eval`, `rejects`), in order."""
        folder = self.root / ("rejects" if split == "rejects" else "data")
        return sorted(folder.glob(f"{split}-[0-9][0-9][0-9][0-9][0-9].parquet")) if folder.is_dir() else []

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
    def claim(self, fingerprint: str, payload: dict[str, Any], overwrite: bool) -> None:
        """Make the folder this recipe's: resume a build of the same recipe, refuse a foreign folder unless
        `overwrite` (the teacher cache is kept either way)."""
        if self.root.exists() and any(self.root.iterdir()):
            if self.build_marker.is_file():
                previous = json.loads(self.build_marker.read_text()).get("recipe_hash")
                if previous != fingerprint:
                    if not overwrite:
                        raise InputError("output", [Problem(
                            str(self.root), "output.dir",
                            f"holds a build of another recipe (hash {previous}, this one is {fingerprint}); pass "
                            "--overwrite to replace it (the teacher cache is kept)")])
                    self.clear()
            elif not overwrite:
                raise InputError("output", [Problem(str(self.root), "output.dir",
                                                    "exists, is not empty and was not made by ascl-data build; "
                                                    "choose another folder or pass --overwrite")])
            else:
                self.clear()
        elif overwrite:
            self.clear()
        atomic_write_bytes(self.build_marker,
                           (json.dumps({"recipe_hash": fingerprint, **payload}, indent=2, sort_keys=True) + "\n").encode())

    def clear(self) -> None:
        """Remove the outputs and markers of an earlier build (not the cache)."""
        for path in (self.root / "data", self.root / "rejects", self.stats_dir, self.card, self.state / "chunks",
                     self.build_marker):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

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
