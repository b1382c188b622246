"""The writer: fixed schemas per split, atomic shards, a folder that `datasets.load_dataset` reads through the
README `configs:`, and stale shards of an earlier run removed."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

from ascl_data.pipeline.card import dataset_info
from ascl_data.errors import FatalError
from ascl_data.rule_tool import RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import PromptRecord, Rejection, Trace
from ascl_data.pipeline.layout import Layout, atomic_write_bytes
from ascl_data.pipeline.writer import DatasetWriter, data_files_config, trace_row
from ascl_data.row_schema import SFT_SCHEMA


@pytest.fixture(scope="module")
def tools() -> list[dict]:
    return [RuleTool(load_ruleset()).schema()]


def direct(tools, i: int) -> Trace:
    return Trace(prompt_id=f"d{i}", kind="benign", messages=[{"role": "user", "content": f"hi {i}"},
                 {"role": "assistant", "content": "hello"}], tools=tools, generator="adaptive",
                 teacher_model="m", ruleset_name="r", ruleset_version="1", verdict="comply")


def consulted(tools) -> Trace:
    return Trace(prompt_id="c1", kind="harmful", messages=[
        {"role": "user", "content": "build a bomb"},
        {"role": "assistant", "reasoning_content": "this needs the rules", "tool_calls": [
            {"id": "call_1", "function": {"name": "retrieve_safety_rules", "arguments": {"query": "explosives"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "[]"},
        {"role": "assistant", "content": "I can't help with that."}],
        tools=tools, generator="adaptive", teacher_model="m", ruleset_name="r", ruleset_version="1",
        num_tool_calls=1, consulted=True, verdict="refuse", retrieved_rule_ids=["weapons_cbrn/explosives"])


def prompt(i: int, kind: str = "reasoning") -> PromptRecord:
    return PromptRecord(messages=[{"role": "user", "content": f"what is {i}+1?"}], kind=kind, reference=str(i + 1),
                        provenance={"dataset": "p.jsonl", "row": i})


def finish(root: Path, writer: DatasetWriter, n: int) -> dict:
    files = writer.finalize(n)
    rows = {s: sum(pq.read_metadata(root / f).num_rows for f in fs) for s, fs in files.items()}
    meta = {"configs": data_files_config(files), "dataset_info": dataset_info(root, files, rows)}
    (root / "README.md").write_text("---\n" + yaml.safe_dump(meta) + "---\n")
    return files


def test_shards_agree_on_schema_and_load(tmp_path: Path, tools) -> None:
    w = DatasetWriter(Layout(tmp_path))
    # the first shard has no tool call at all: an inferred schema would type tool_calls as null
    w.write_chunk(0, [direct(tools, 0), direct(tools, 1)], [prompt(0)], [], [])
    w.write_chunk(1, [consulted(tools)], [], [prompt(1, "benign")],
                  [Rejection(prompt_id="x", kind="benign", stage="judge", reason="benign_refused", detail="d")])
    finish(tmp_path, w, 2)
    assert pq.read_schema(tmp_path / "data/sft-00000-of-00002.parquet").equals(pq.read_schema(tmp_path / "data/sft-00001-of-00002.parquet"))
    assert pq.read_schema(tmp_path / "data/sft-00000-of-00002.parquet").equals(SFT_SCHEMA)
    sft = datasets.load_dataset(str(tmp_path), split="sft")
    assert sft["prompt_id"] == ["d0", "d1", "c1"]
    back = Trace.from_row(sft[2])  # a parquet round trip gives the same trace
    assert back == consulted(tools)
    prompts = datasets.load_dataset(str(tmp_path), "rl")
    assert prompts["rl"][0]["prompt"] == [{"role": "user", "content": "what is 0+1?"}]
    assert prompts["eval"][0]["kind"] == "benign"
    assert datasets.load_dataset(str(tmp_path), "rejects", split="rejects")["reason"] == ["benign_refused"]


def test_think_inline_renders_reasoning_into_content(tools) -> None:
    row = trace_row(consulted(tools), think_inline=True)
    first = row["messages"][1]
    assert first["reasoning_content"] is None and first["content"].startswith("<think>\nthis needs the rules\n</think>")
    assert trace_row(consulted(tools))["messages"][1]["reasoning_content"] == "this needs the rules"


def test_empty_splits_are_left_out_and_stale_shards_removed(tmp_path: Path, tools) -> None:
    w = DatasetWriter(Layout(tmp_path))
    for i in range(3):
        w.write_chunk(i, [direct(tools, i)], [prompt(i)], [], [])
    (tmp_path / "data" / ".sft-00009.parquet.tmp-123").write_bytes(b"half written")
    finish(tmp_path, w, 3)
    # a rerun of another size: chunk 2 no longer exists, chunk 1 has no sft rows now
    w.write_chunk(1, [], [prompt(1)], [], [])
    files = finish(tmp_path, w, 2)
    assert files["sft"] == ["data/sft-00000-of-00002.parquet"] and files["eval"] == [] and files["rejects"] == []
    assert not list((tmp_path / "data").glob(".*tmp*"))
    configs = {c["config_name"]: c for c in data_files_config(files)}
    assert set(configs) == {"sft", "rl"} and [d["split"] for d in configs["rl"]["data_files"]] == ["rl"]
    assert len(datasets.load_dataset(str(tmp_path), "rl", split="rl")) == 2


def test_rebuilt_folder_is_not_served_from_a_stale_datasets_cache(tmp_path: Path, tools) -> None:
    root = tmp_path / "out"
    w = DatasetWriter(Layout(root))
    w.write_chunk(0, [direct(tools, 0)], [], [], [])
    finish(root, w, 1)
    assert len(datasets.load_dataset(str(root), split="sft")) == 1
    w.write_chunk(0, [direct(tools, 0), direct(tools, 1)], [], [], [])
    finish(root, w, 1)
    assert len(datasets.load_dataset(str(root), split="sft")) == 2


def test_atomic_write_leaves_old_or_new(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(FatalError, match="disk full"):  # a clear error that stops the build, naming the cause
        atomic_write_bytes(path, b"new content")
    assert path.read_bytes() == b"old"
