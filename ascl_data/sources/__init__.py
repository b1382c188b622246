"""Prompt sources: Hub datasets and local files, normalised to PromptRecords with provenance, mixed,
deduplicated and decontaminated, as one deterministic stream.

`preflight(recipe)` checks every source before any teacher call: local files row by row (a bad row is named by
file, line and field), Hub datasets by loading them and checking the mapped columns exist. `prompt_stream(recipe)`
then yields PromptRecords and source-stage Rejections in a fixed order for a fixed seed.
"""

from __future__ import annotations

from ascl_data.lazy import lazy_exports

# name -> module; loaded on first use, so that `ascl_data.recipe` can import the adapters table (a leaf) without
# importing the stages that read recipes
_EXPORTS = {
    "RowError": "normalise", "normalise": "normalise", "passes": "normalise",
    "MAX_REPORTED": "source", "Source": "source", "SourceInfo": "source", "open_sources": "source",
    "preflight": "source", "source_ids": "source", "build_decontaminator": "stream", "prompt_stream": "stream",
}


__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()})

__all__ = sorted(_EXPORTS)
