"""Local prompt files (JSONL, CSV, parquet), read row by row so that a bad row is named by file and line."""

from __future__ import annotations

import csv
import glob
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from ascl_data.errors import InputError, Problem, utf8_problem

PACKAGE_PREFIX = "package:"


def expand_paths(pattern: str) -> list[Path]:
    """A file, a glob, or `package:NAME` (a file shipped in `ascl_data/data`), in sorted order."""
    if pattern.startswith(PACKAGE_PREFIX):
        path = Path(str(resources.files("ascl_data") / "data" / pattern[len(PACKAGE_PREFIX) :]))
        return [path] if path.is_file() else []
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    path = Path(pattern)
    return [path] if path.is_file() else []


def _not_utf8(path: Path) -> InputError:
    """The error for a source with bytes that are not UTF-8, at the line and column of the first one."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InputError(f"source {path}", [utf8_problem(str(path), data, exc)])
    return InputError(f"source {path}", [Problem(str(path), "", "not UTF-8 text")])


def jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    """The one JSONL reader: `(file:line, row)` per object, or `(file:line, Problem)` for a line that is not UTF-8,
    not JSON or not an object; blank lines are skipped. Sources stop at the first problem; `validate` lists them all."""
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            where = f"{path}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield where, utf8_problem(str(path), raw, exc, first_line=n)
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, Problem(where, "", f"not JSON: {exc.msg}")
                continue
            if not isinstance(row, dict):
                yield where, Problem(where, "", f"expected a JSON object, got {type(row).__name__}")
                continue
            yield where, row


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, row in jsonl_rows(path):
        if isinstance(row, Problem):
            raise InputError(f"source {path}", [row])
        yield where, row


def iter_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        yield from _iter_csv(path)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _iter_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise InputError(f"source {path}", [Problem(f"{path}:1", "", "the CSV file has no header row")])
        for row in reader:
            if None in row:  # more cells than header columns
                raise InputError(
                    f"source {path}",
                    [Problem(f"{path}:{reader.line_num}", "", f"{len(row[None]) + len(reader.fieldnames)} cells "  # type: ignore[index]
                             f"but the header has {len(reader.fieldnames)} columns")],
                )
            yield f"{path}:{reader.line_num}", {k: (v if v != "" else None) for k, v in row.items()}


def iter_parquet(path: Path, batch_size: int = 4096) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a broken file
        raise InputError(f"source {path}", [Problem(str(path), "", f"not a readable parquet file: {exc}")]) from None
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for item in batch.to_pylist():
            yield f"{path} row {row}", item
            row += 1


def iter_local_rows(pattern: str, fmt: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for every row of every file matching `pattern`; `where` is `file:line` or `file row N`."""
    paths = expand_paths(pattern)
    if not paths:
        raise InputError(f"source {pattern}", [Problem(pattern, "path", "no file matches")])
    reader = {"jsonl": iter_jsonl, "csv": iter_csv, "parquet": iter_parquet}[fmt]
    for path in paths:
        yield from reader(path)
