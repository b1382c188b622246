"""`ascl-data validate` on damaged input: a corrupt or truncated parquet file, JSONL and rule books with bytes that
are not UTF-8. Each is a problem naming the file (and line), with exit 1 and no traceback; the readable rows and
files around it are still checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ascl_data.validate import validate_path

ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _validate_cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ascl_data", "validate", str(path)], capture_output=True, text=True,
                          timeout=120)


def _parquet(path: Path, rows: int = 200) -> Path:
    table = pa.table({"messages": [json.dumps(ROW["messages"]) + " " * (i % 7) for i in range(rows)],
                      "n": list(range(rows))})
    pq.write_table(table, path, row_group_size=50)
    return path


def test_a_corrupt_or_truncated_parquet_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    whole = _parquet(tmp_path / "a.parquet").read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1" + b"\xff" * 4000)
    for name in ("truncated.parquet", "garbage.parquet"):
        what, rows, problems = validate_path(tmp_path / name)
        assert what == "traces" and len(problems) == 1, problems
        assert problems[0].where == str(tmp_path / name) and "not a readable parquet file" in problems[0].message
        result = _validate_cli(tmp_path / name)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert name in result.stdout and "not a readable parquet file" in result.stdout


def test_a_damaged_shard_in_a_dataset_folder_is_named_and_the_others_are_checked(tmp_path: Path) -> None:
    folder = tmp_path / "ds" / "data"
    folder.mkdir(parents=True)
    _parquet(folder / "sft-00000.parquet", rows=10)
    (folder / "sft-00001.parquet").write_bytes(b"not parquet at all")
    what, rows, problems = validate_path(tmp_path / "ds")
    assert rows == 10  # the good shard was read
    assert [p.where for p in problems if "readable" in p.message] == [str(folder / "sft-00001.parquet")]


def test_jsonl_with_bytes_that_are_not_utf8_names_the_line_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    good = json.dumps(ROW).encode()
    path.write_bytes(good + b"\n" + b'{"messages": "caf\xe9"}\n' + good + b"\n")
    what, rows, problems = validate_path(path)
    utf8 = [p for p in problems if "UTF-8" in p.message]
    assert len(utf8) == 1 and utf8[0].where == f"{path}:2" and "byte 0xe9 at column 18" in utf8[0].message
    assert rows == 2
    result = _validate_cli(path)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "traces.jsonl:2" in result.stdout


def test_a_rule_book_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"name: x\nversion: '1'\nrules:\n  - id: a/b\n    title: Caf\xe9\n")
    what, _, problems = validate_path(path)
    assert what == "ruleset" and problems[0].where == f"{path}:5" and "not UTF-8" in problems[0].message
    result = _validate_cli(path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
