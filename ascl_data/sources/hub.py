"""Hugging Face datasets through `datasets.load_dataset` (Hub ids, or local dataset folders that load the same way)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ascl_data.errors import InputError, Problem

if TYPE_CHECKING:
    from ascl_data.recipe import SourceSpec
    from ascl_data.sources.adapters import Adapter

ROW_COLUMN = "__ascl_row__"


def resolved_location(spec: SourceSpec, adapter: Adapter | None) -> tuple[str, str | None, str]:
    """(dataset, config, split) after the adapter's defaults."""
    dataset = spec.dataset or (adapter.dataset if adapter else "")
    config = spec.config if "config" in spec.model_fields_set or adapter is None else adapter.config
    split = spec.split if "split" in spec.model_fields_set or adapter is None else adapter.split
    return dataset, config, split


def load(spec: SourceSpec, adapter: Adapter | None, field: str) -> Any:
    """`load_dataset` with the recipe's settings; failures become an InputError naming the source."""
    import datasets

    dataset, config, split = resolved_location(spec, adapter)
    kwargs = {**(adapter.load_kwargs if adapter else {}), **spec.load_kwargs}
    try:
        return datasets.load_dataset(
            dataset, config, split=split, revision=spec.revision, streaming=spec.streaming, **kwargs
        )
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; all mean "this source cannot load"
        hint = f" ({adapter.note})" if adapter and adapter.note else ""
        raise InputError(
            f"source {spec.name}",
            [Problem(f"{dataset} config={config} split={split} revision={spec.revision}", field,
                     f"cannot load: {type(exc).__name__}: {exc}{hint}")],
        ) from None


def column_names(ds: Any) -> list[str] | None:
    names = getattr(ds, "column_names", None)
    if names:
        return list(names)
    try:  # streaming datasets without declared features: look at the first row
        return list(next(iter(ds)).keys())
    except StopIteration:
        return []


def iter_hub_rows(ds: Any, spec: SourceSpec, adapter: Adapter | None, keep: Any, seed: int) -> Iterator[tuple[str, dict]]:
    """(where, row) for the rows that pass `keep`, shuffled and sampled as the recipe says, streamed."""
    dataset, config, split = resolved_location(spec, adapter)
    ds = ds.map(lambda _row, idx: {ROW_COLUMN: idx}, with_indices=True)
    if spec.filters:
        ds = ds.filter(keep)
    if spec.shuffle:
        ds = ds.shuffle(seed=seed, buffer_size=spec.shuffle_buffer) if spec.streaming else ds.shuffle(seed=seed)
    if spec.sample is not None:
        if spec.streaming:
            ds = ds.take(spec.sample)
        else:
            ds = ds.select(range(min(spec.sample, len(ds))))
    label = f"{dataset}" + (f"[{config}]" if config else "") + f"/{split}"
    for row in ds:
        idx = row.pop(ROW_COLUMN)
        yield f"{label} row {idx}", row


def revision_of(spec: SourceSpec, adapter: Adapter | None) -> str | None:
    """The pinned revision, else the Hub's current commit for the card (None offline or for local folders)."""
    if spec.revision:
        return spec.revision
    dataset, _, _ = resolved_location(spec, adapter)
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(dataset, timeout=5).sha
    except Exception:  # noqa: BLE001 - offline, gated or a local folder: the card says "unpinned"
        return None
