"""`ascl-data rules ...` and `ascl-data validate` as a user runs them, exit codes included."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml
from typer.testing import CliRunner

from ascl_data.cli import app
from ascl_data.rulebook import load_ruleset
from ascl_data.rule_tool import RuleTool
from ascl_data.schemas import Trace
from tests.conftest import small_ruleset_dict
from tests.test_schemas import consult_trace

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def flat(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_rules_list_show_search_json() -> None:
    listed = json.loads(run("rules", "list", "--json").stdout)
    assert len(listed) == len(load_ruleset("default").rules)
    shown = json.loads(run("rules", "show", listed[0]["id"], "--json").stdout)
    assert shown["id"] == listed[0]["id"] and shown["borderline"]
    found = json.loads(run("rules", "search", "kill a zombie process", "--json", "-k", "2").stdout)
    assert len(found) == 2 and found[0]["score"] >= found[1]["score"]


def test_rules_table_and_errors(small_ruleset_file: Path) -> None:
    result = run("rules", "search", "ransomware", "--ruleset", str(small_ruleset_file))
    assert result.exit_code == 0 and "cyber/malware" in flat(result)
    missing = run("rules", "show", "cyber/nope", "--ruleset", str(small_ruleset_file))
    assert missing.exit_code == 1 and "no rule 'cyber/nope'" in flat(missing)
    none = run("rules", "search", "what is it that you are", "--ruleset", str(small_ruleset_file))
    assert none.exit_code == 0 and "no rule matched 'what is it that you are'" in flat(none)
    assert json.loads(run("rules", "search", "如何制造炸弹", "--json").stdout) == []
    bad_cat = run("rules", "search", "x", "--ruleset", str(small_ruleset_file), "-c", "bio")
    assert bad_cat.exit_code == 2 and "unknown categories" in flat(bad_cat)


def test_validate_rule_books(tmp_path: Path, small_ruleset_file: Path) -> None:
    ok = run("validate", str(small_ruleset_file))
    assert ok.exit_code == 0 and "4 rules valid" in flat(ok)
    data = small_ruleset_dict()
    data["rules"][1]["id"] = "weapons/explosives"
    data["rules"][2]["text"] = ""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run("validate", str(bad), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    messages = [p["message"] for p in report["problems"]]
    assert any("text must not be empty" in m for m in messages)
    assert all(p["where"].startswith(str(bad)) for p in report["problems"])


def test_validate_traces_jsonl_parquet_and_folder(tmp_path: Path) -> None:
    tool = RuleTool(load_ruleset("default"))
    good = Trace.model_validate(consult_trace(tool)).to_row()
    orphan = consult_trace(tool)
    orphan["messages"][3]["tool_call_id"] = "call_x"
    orphan["tools"] = json.dumps(orphan["tools"])
    lines = [json.dumps(good), "{not json", json.dumps(orphan)]
    jsonl = tmp_path / "traces.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    result = run("validate", str(jsonl))
    assert result.exit_code == 1
    out = flat(result)
    assert f"{jsonl}:2: not JSON" in out
    assert f"{jsonl}:3: messages.3" in out or f"{jsonl}:3:" in out
    assert "call_x" in out

    folder = tmp_path / "ds" / "data"
    folder.mkdir(parents=True)
    datasets.Dataset.from_list([good, good]).to_parquet(folder / "sft-00000.parquet")
    ok = run("validate", str(tmp_path / "ds"))
    assert ok.exit_code == 0 and "2 traces valid" in flat(ok)


@pytest.mark.parametrize("name", ["missing.yaml", "notes.txt"])
def test_validate_unknown_inputs(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("hello")
    assert run("validate", str(path)).exit_code == 1
