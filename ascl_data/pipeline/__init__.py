"""The build, split along its data flow: `plan` (splits, generators, chunks), `runner` (one chunk to rows and
rejections), `writer` (parquet shards), `stats`, `card`, and `layout` (the folder and its markers), tied together
by `Build` in `job`. Names load on first use, so `layout` stays cheap for publish and `rl`."""

from __future__ import annotations

from ascl_data.lazy import lazy_exports

_EXPORTS = {
    "Build": "job", "check_recipe": "check", "STATE_DIR": "layout", "Layout": "layout",
    "BuildResult": "summary", "BuildSummary": "summary", "print_summary": "summary",
}


__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()})

__all__ = sorted(_EXPORTS)
