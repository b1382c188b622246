"""Parquet shards per split, written atomically with one fixed arrow schema per split.

Layout of a built dataset folder (it loads with `datasets.load_dataset(folder)` through the README's `configs:`;
file names `{split}-NNNNN-of-MMMMM.parquet`, chunk NNNNN of MMMMM, once the build has finished):

    data/sft-00000-of-00001.parquet ...     accepted traces (OpenAI chat `messages`, `tools` as a JSON string)
    data/rl-00000-of-00001.parquet ...      prompts for RL: TRL's conversational `prompt` column, kind, reference
    data/eval-00000-of-00001.parquet ...    held-out prompts, same columns as rl
    rejects/rejects-00000-of-00001.parquet  every prompt that did not make it, with stage, reason and detail
    stats/                          stats.json and PNG plots
    README.md                       the dataset card

The schemas are explicit so that every shard agrees (a shard without any tool call would otherwise infer a null
type and break loading).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ascl_data.pipeline.layout import SHARD, Layout, atomic_write_bytes, is_temp
from ascl_data.row_schema import SCHEMAS
from ascl_data.schemas import SPLITS, PromptRecord, Rejection, Trace, inline_reasoning
from ascl_data.secrets import scrub_json



def trace_row(trace: Trace, think_inline: bool = False) -> dict[str, Any]:
    row = trace.to_row()
    if think_inline:
        row["messages"] = [inline_reasoning(m) for m in row["messages"]]
    return row


def prompt_row(record: PromptRecord, system_prompt: str | None = None) -> dict[str, Any]:
    """A prompt for RL or eval, in TRL's conversational `prompt` column. With `system_prompt`, it opens the
    conversation (merged with a system turn the record brings, as the generators do), so a stock `GRPOTrainer`
    on the `rl` split sees the prompt the traces were made with."""
    messages = [m.model_dump() for m in record.messages]
    if system_prompt is not None:
        if messages[0]["role"] == "system":
            system_prompt = f"{system_prompt}\n\n{messages[0]['content']}"
            messages = messages[1:]
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return {
        "prompt_id": record.id,
        "prompt": messages,
        "kind": record.kind,
        "category": record.category,
        "reference": record.reference,
        "provenance": record.provenance.model_dump(),
    }


def reject_row(rejection: Rejection) -> dict[str, Any]:
    """A rejection's row, scrubbed of secrets: its detail and raw output may echo a server's error body, and the
    `rejects` split is pushed with the dataset."""
    return scrub_json(rejection.model_dump())


def write_table(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> int:
    """One parquet file, atomically; returns the rows written."""
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=max(1, min(len(rows), 10_000)))
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return len(rows)


class DatasetWriter:
    """Writes the shards of one build into `root`."""

    def __init__(self, layout: Layout, think_inline: bool = False, system_prompt: str | None = None):
        self.layout = layout
        self.think_inline = think_inline
        self.system_prompt = system_prompt

    def write_chunk(
        self,
        index: int,
        traces: Iterable[Trace],
        rl: Iterable[PromptRecord],
        eval_: Iterable[PromptRecord],
        rejections: Iterable[Rejection],
    ) -> dict[str, int]:
        """The shards of one pipeline chunk (an empty part writes no file). Returns rows per split."""
        parts = {
            "sft": [trace_row(t, self.think_inline) for t in traces],
            "rl": [prompt_row(r, self.system_prompt) for r in rl],
            "eval": [prompt_row(r, self.system_prompt) for r in eval_],
            "rejects": [reject_row(r) for r in rejections],
        }
        counts = {}
        for split, rows in parts.items():
            for old in self.layout.chunk_shards(index, split):  # left by an earlier run (finished or not)
                old.unlink()
            if rows:
                write_table(self.layout.shard(split, index), rows, SCHEMAS[split])
            counts[split] = len(rows)
        return counts

    def finalize(self, n_chunks: int) -> dict[str, list[str]]:
        """Remove shards that no chunk of this build wrote (left by an earlier run), name the others
        `{split}-NNNNN-of-MMMMM.parquet` (so that `datasets` keeps the split names without the card); list the
        shards per split."""
        root = self.layout.root
        files: dict[str, list[str]] = {s: [] for s in (*SPLITS, "rejects")}
        for folder in (root / "data", root / "rejects"):
            for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
                m = SHARD.match(path.name)
                if not m or int(m.group(2)) >= n_chunks:
                    path.unlink()
                    continue
                final = self.layout.shard(m.group(1), int(m.group(2)), n_chunks)
                if final != path:
                    os.replace(path, final)
                files[m.group(1)].append(final.relative_to(root).as_posix())
            for tmp in folder.iterdir() if folder.is_dir() else []:
                if is_temp(tmp.name) and tmp.is_file():
                    tmp.unlink()
        return files


def data_files_config(files: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The README `configs:`. Traces and prompts have different columns and `datasets` wants one schema per
    config, so: `sft` (the default; split `sft`), `rl` (splits `rl` and `eval`, the same prompt columns) and
    `rejects` (split `rejects`). `load_dataset(folder)` gives the traces, `load_dataset(folder, "rl")` the prompts.
    A split without rows is left out (`datasets` cannot read a parquet file of zero rows), and so is a config
    without splits."""
    layout = {"sft": ["sft"], "rl": ["rl", "eval"], "rejects": ["rejects"]}
    folder = {"rejects": "rejects"}
    configs: list[dict[str, Any]] = []
    for name, splits in layout.items():
        data_files = [
            {"split": s, "path": f"{folder.get(s, 'data')}/{s}-*.parquet"} for s in splits if files.get(s)
        ]
        if data_files:
            configs.append({"config_name": name, "data_files": data_files})
    if configs:
        configs[0]["default"] = True
    return configs
