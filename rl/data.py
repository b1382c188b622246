"""Loading the splits the build writes (`sft`, `rl`, `eval`) from a folder, a parquet/jsonl file or the Hub."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, load_dataset

from ascl_data.pipeline.layout import Layout
from ascl_data.errors import InputError, Problem

SFT_COLUMNS = ("messages", "tools")


def load_split(dataset: str, split: str, max_samples: int | None = None, seed: int = 0) -> Dataset:
    """One split of a built dataset. `dataset` is a folder made by `ascl-data build`, a .parquet/.jsonl file (whose
    rows are the split), or a Hub repo id. `max_samples` keeps a seeded random subset."""
    path = Path(dataset)
    if path.is_file():
        fmt = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(path.suffix)
        if fmt is None:
            raise InputError("dataset", [Problem(dataset, "", "expected a folder, a .parquet or a .jsonl file")])
        ds = load_dataset(fmt, data_files=str(path), split="train")
    elif path.is_dir() and Layout(path).split_files(split):
        # Per-split files: loading the folder as one builder would cast every split to the first split's columns.
        ds = load_dataset("parquet", data_files=[str(f) for f in Layout(path).split_files(split)], split="train")
    else:
        try:
            ds = load_dataset(str(dataset), split=split)
        except ValueError as exc:
            raise InputError("dataset", [Problem(dataset, "split", str(exc))]) from None
    if max_samples is not None and len(ds) > max_samples:
        ds = ds.shuffle(seed=seed).select(range(max_samples))
    return ds


def require_columns(ds: Dataset, columns: tuple[str, ...], where: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise InputError(
            "dataset", [Problem(where, "", f"missing columns {missing}; it has {ds.column_names}")]
        )
