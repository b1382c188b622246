"""A built folder loads the way the Hub loads it: the split names `sft`, `rl`, `eval` and `rejects` survive with the
card's `configs` and without them (issue 25, item 5).

Without a card, `datasets` reads split names from file names only in the Hub's sharded form
`data/{split}-NNNNN-of-MMMMM.parquet`; any other name falls back to its keyword patterns, where `eval` means `test`
and `sft`/`rl` match nothing and are dropped silently.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

from ascl_data.pipeline.layout import Layout
from ascl_data.pipeline.writer import DatasetWriter, data_files_config
from ascl_data.schemas import PromptRecord, Rejection, Trace


def trace(i: int) -> Trace:
    return Trace(prompt_id=f"t{i}", kind="benign", messages=[
        {"role": "system", "content": "s"}, {"role": "user", "content": f"hi {i}"},
        {"role": "assistant", "content": f"hello {i}"}], tools=[], generator="adaptive", teacher_model="m",
        ruleset_name="r", ruleset_version="1", num_tool_calls=0, consulted=False, verdict="comply")


def prompt(i: int, kind: str = "benign") -> PromptRecord:
    return PromptRecord(messages=[{"role": "user", "content": f"question {i}"}], kind=kind,
                        provenance={"dataset": "p.jsonl", "row": i})


def rejection(i: int) -> Rejection:
    return Rejection(prompt_id=f"x{i}", kind="benign", stage="judge", reason="benign_refused", detail="d")


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    """Two chunks as a build writes them; the second has no rl row (its chunk writes no rl file)."""
    writer = DatasetWriter(Layout(tmp_path))
    writer.write_chunk(0, [trace(0), trace(1)], [prompt(0)], [prompt(1)], [rejection(0)])
    writer.write_chunk(1, [trace(2)], [], [prompt(2), prompt(3)], [])
    return tmp_path, writer.finalize(2)


def write_card(root: Path, files: dict[str, list[str]]) -> None:
    (root / "README.md").write_text("---\n" + yaml.safe_dump({"configs": data_files_config(files)}) + "---\n")


def test_a_finished_build_names_its_shards_chunk_of_chunks(built):
    root, files = built
    assert files == {
        "sft": ["data/sft-00000-of-00002.parquet", "data/sft-00001-of-00002.parquet"],
        "rl": ["data/rl-00000-of-00002.parquet"],
        "eval": ["data/eval-00000-of-00002.parquet", "data/eval-00001-of-00002.parquet"],
        "rejects": ["rejects/rejects-00000-of-00002.parquet"],
    }
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")) == sorted(sum(files.values(), []))
    assert [p.name for p in Layout(root).shards("eval")] == ["eval-00000-of-00002.parquet", "eval-00001-of-00002.parquet"]


def test_without_the_card_the_split_names_survive(built):
    root, _ = built
    assert not (root / "README.md").exists()
    assert sorted(datasets.get_dataset_split_names(str(root))) == ["eval", "rl", "sft"]  # not `test`, none dropped
    for split, n in (("sft", 3), ("rl", 1), ("eval", 3)):  # one split's files, named by the split alone
        ds = datasets.load_dataset(str(root), data_files={split: f"data/{split}-*.parquet"}, split=split)
        assert len(ds) == n
    prompts = datasets.load_dataset(str(root), split="eval", streaming=True)  # the prompt splits share columns
    assert [r["prompt"][-1]["content"] for r in prompts] == ["question 1", "question 2", "question 3"]


def test_with_the_card_each_config_loads_its_splits(built):
    root, files = built
    write_card(root, files)
    sft = datasets.load_dataset(str(root))
    assert list(sft) == ["sft"] and sft["sft"]["prompt_id"] == ["t0", "t1", "t2"]
    prompts = datasets.load_dataset(str(root), "rl")
    assert sorted(prompts) == ["eval", "rl"] and len(prompts["rl"]) == 1 and len(prompts["eval"]) == 3
    assert datasets.load_dataset(str(root), "rejects", split="rejects")["prompt_id"] == ["x0"]


def test_a_rerun_replaces_a_finished_chunk_and_renames_for_its_chunk_count(built):
    """Resuming or retrying a finished build rewrites a chunk under the running name: the old file goes, and the
    shards are named for the new number of chunks; a chunk that no longer exists is removed."""
    root, _ = built
    writer = DatasetWriter(Layout(root))
    writer.write_chunk(0, [trace(5)], [prompt(5)], [], [])  # chunk 0 again, now without eval rows or rejects
    assert [p.name for p in Layout(root).chunk_shards(0, "sft")] == ["sft-00000.parquet"]
    files = writer.finalize(1)
    assert files == {"sft": ["data/sft-00000-of-00001.parquet"], "rl": ["data/rl-00000-of-00001.parquet"],
                     "eval": [], "rejects": []}
    assert pq.read_table(root / files["sft"][0]).column("prompt_id").to_pylist() == ["t5"]
    assert sorted(p.name for p in root.rglob("*.parquet")) == ["rl-00000-of-00001.parquet", "sft-00000-of-00001.parquet"]
