"""`ascl-data validate`: check a rule book, a file of traces, or a dataset folder, and report every problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ascl_data.errors import InputError, Problem, load_yaml_model, validation_problems
from ascl_data.rulebook import Ruleset
from ascl_data.schemas import Trace
from ascl_data.sources.local import jsonl_rows

TRACE_FILE_SUFFIXES = {".jsonl", ".json", ".parquet"}


def _iter_parquet(path: Path) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_index = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                yield f"{path} row {row_index}", row
                row_index += 1
    except (pa.ArrowException, OSError) as exc:
        # a damaged file: say so once, with where reading stopped, and go on with the other files
        at = f" (unreadable from row {row_index} on)" if row_index else ""
        yield str(path), Problem(str(path), "", f"not a readable parquet file{at}: {exc}")


def iter_trace_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | Problem]]:
    """(where, row) for each trace row of a .jsonl/.parquet file, or of the sft parquet shards of a dataset folder."""
    if path.is_dir():
        shards = sorted(p for p in path.rglob("*.parquet") if "rejects" not in p.name and _is_trace_shard(p))
        if not shards:
            yield str(path), Problem(str(path), "", "no trace parquet shards found in this folder")
        for shard in shards:
            yield from _iter_parquet(shard)
    elif path.suffix == ".parquet":
        yield from _iter_parquet(path)
    else:
        yield from jsonl_rows(path)


def _is_trace_shard(path: Path) -> bool:
    """A parquet file with a `messages` column; an unreadable one counts, so that its problem is reported."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return "messages" in pq.read_schema(path).names
    except (pa.ArrowException, OSError):
        return True


def validate_traces(path: Path) -> tuple[int, list[Problem]]:
    """Validate every trace row; returns (rows seen, problems). Streams: never holds the whole file."""
    problems: list[Problem] = []
    rows = 0
    for where, row in iter_trace_rows(path):
        if isinstance(row, Problem):
            problems.append(row)
            continue
        rows += 1
        try:
            Trace.from_row(row)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, where))
        except (TypeError, json.JSONDecodeError) as exc:
            problems.append(Problem(where, "tools", f"not a JSON tool list: {exc}"))
    return rows, problems


def looks_like_ruleset(path: Path) -> bool:
    if path.suffix not in {".yaml", ".yml"}:
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            head = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError):
        return True  # let the rule-book loader report the YAML or encoding error with its line
    return isinstance(head, dict) and "rules" in head


def validate_path(path: Path) -> tuple[str, int, list[Problem]]:
    """Dispatch on what the path holds: ('ruleset'|'traces', items checked, problems)."""
    if not path.exists():
        return "missing", 0, [Problem(str(path), "", "no such file or folder")]
    if path.is_file() and path.suffix in {".yaml", ".yml"}:
        if not looks_like_ruleset(path):
            return "unknown", 0, [Problem(str(path), "", "YAML file without a `rules:` list: not a rule book")]
        try:
            ruleset = load_yaml_model(path, Ruleset, what=f"rule book {path}")
        except InputError as exc:
            return "ruleset", 0, exc.problems
        return "ruleset", len(ruleset.rules), []
    if path.is_dir() or path.suffix in TRACE_FILE_SUFFIXES:
        rows, problems = validate_traces(path)
        return "traces", rows, problems
    return "unknown", 0, [Problem(str(path), "", f"cannot validate a {path.suffix or 'extensionless'} file")]
