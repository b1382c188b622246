"""Build statistics with polars, read lazily from the written shards (so they stream, however large the build).

Tables: consultation rate by kind, categories, lengths, rejection reasons, tokens. Shown on the terminal with
rich, saved as `stats/stats.json` and drawn as PNG plots (matplotlib, Agg) for the dataset card.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from ascl_data.pipeline.layout import atomic_write_bytes
from ascl_data.recipe import Recipe
from ascl_data.schemas import KINDS


def _scan(root: Path, files: list[str]) -> pl.LazyFrame | None:
    paths = [str(root / f) for f in files]
    return pl.scan_parquet(paths) if paths else None


def _records(df: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in df.to_dicts()]


def consult_policies(recipe: Recipe) -> dict[str, str]:
    """The consultation policy per prompt kind (`generators[i].consult`); generators that differ give "a/b"."""
    return {kind: "/".join(sorted({g.consult.get(kind, "auto") for g in recipe.generators}))  # type: ignore[call-overload]
            for kind in KINDS}


def compute_stats(root: str | Path, files: dict[str, list[str]],
                  policies: dict[str, str] | None = None) -> dict[str, Any]:
    """Aggregates over the shards listed per split (as `DatasetWriter.finalize` returns them); `policies` (kind ->
    consultation policy) goes beside each kind's consultation rate."""
    root = Path(root)
    out: dict[str, Any] = {"rows": {}}
    sft = _scan(root, files.get("sft", []))
    rejects = _scan(root, files.get("rejects", []))
    for split in ("sft", "rl", "eval", "rejects"):
        lf = _scan(root, files.get(split, []))
        out["rows"][split] = int(lf.select(pl.len()).collect().item()) if lf is not None else 0

    if sft is not None:
        by_kind = (
            sft.group_by("kind")
            .agg(
                pl.len().alias("traces"),
                pl.col("consulted").mean().alias("consultation_rate"),
                pl.col("num_tool_calls").mean().alias("mean_tool_calls"),
            )
            .sort("kind")
            .collect()
        )
        out["consultation_by_kind"] = [{**r, "policy": (policies or {}).get(r["kind"], "auto")}
                                       for r in _records(by_kind)]
        out["verdicts"] = _records(sft.group_by("kind", "verdict").agg(pl.len().alias("n")).sort("kind", "verdict").collect())
        lengths = sft.select(
            pl.col("kind"),
            pl.col("messages").list.last().struct.field("content").str.len_chars().alias("answer_chars"),
            pl.col("messages").list.len().alias("turns"),
            pl.col("prompt_tokens"),
            pl.col("completion_tokens"),
        )
        out["lengths"] = _records(
            lengths.group_by("kind")
            .agg(
                pl.col("answer_chars").median().alias("median_answer_chars"),
                pl.col("answer_chars").max().alias("max_answer_chars"),
                pl.col("turns").mean().alias("mean_turns"),
            )
            .sort("kind")
            .collect()
        )
        out["answer_chars"] = lengths.select("answer_chars").collect().to_series().to_list()[:100_000]
        tok = sft.select(pl.col("prompt_tokens").sum(), pl.col("completion_tokens").sum()).collect().to_dicts()[0]
        out["tokens"] = {k: int(v or 0) for k, v in tok.items()}
    else:
        out.update(consultation_by_kind=[], verdicts=[], lengths=[], answer_chars=[],
                   tokens={"prompt_tokens": 0, "completion_tokens": 0})

    cats = []
    for split in ("sft", "rl", "eval"):
        lf = _scan(root, files.get(split, []))
        if lf is not None:
            cats.append(lf.select(pl.lit(split).alias("split"), pl.col("kind"), pl.col("category").fill_null("(none)")))
    out["categories"] = (
        _records(pl.concat(cats).group_by("split", "kind", "category").agg(pl.len().alias("n"))
                 .sort("split", "kind", "category").collect())
        if cats else []
    )
    out["rejections"] = (
        _records(rejects.group_by("stage", "reason").agg(pl.len().alias("n")).sort(["n", "stage", "reason"],
                 descending=[True, False, False]).collect())
        if rejects is not None else []
    )
    return out


# --------------------------------------------------------------------------- terminal


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    if not rows:
        table.add_column("(none)")
        return table
    for key in rows[0]:
        table.add_column(key, justify="right" if isinstance(rows[0][key], (int, float)) else "left")
    for r in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()))
    return table


def print_stats(stats: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    console.print(_table("Rows per split", [{"split": k, "rows": v} for k, v in stats["rows"].items()]))
    console.print(_table("Consultation rate by kind (sft)", stats["consultation_by_kind"]))
    console.print(_table("Lengths (sft)", stats["lengths"]))
    console.print(_table("Rejections", stats["rejections"]))
    console.print(_table("Tokens (sft)", [stats["tokens"]]))
    if "usage" in stats:
        console.print(_table("Teacher usage (all prompts and attempts)", [stats["usage"]]))
    if "target" in stats:
        console.print(_table("Target (splits.sft.accepted)", [stats["target"]]))


# --------------------------------------------------------------------------- files


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # no timestamps in the metadata, so a rebuild gives the same bytes
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def write_stats(root: str | Path, stats: dict[str, Any], plots: bool = True) -> list[str]:
    """stats/stats.json and the PNG plots; returns the plot paths relative to `root`."""
    root = Path(root)
    public = {k: v for k, v in stats.items() if k != "answer_chars"}
    atomic_write_bytes(root / "stats" / "stats.json", (json.dumps(public, indent=2, sort_keys=True) + "\n").encode())
    if not plots:
        return []
    try:
        import matplotlib
    except ImportError:  # a core install: the numbers are in stats.json, the card has no pictures
        warnings.warn("no plots in stats/: matplotlib is not installed (pip install 'ascl-data[plots]', or set "
                      "output.plots: false)", stacklevel=2)
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []

    def save(name: str, fig: Any) -> None:
        atomic_write_bytes(root / "stats" / name, _png(fig))
        plt.close(fig)
        written.append(f"stats/{name}")

    cons = stats["consultation_by_kind"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([r["kind"] for r in cons], [r["consultation_rate"] for r in cons], color="#4a7ab5")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of traces that consulted")
    ax.set_title("Rule consultation by kind")
    save("consultation_by_kind.png", fig)

    rej = stats["rejections"][:15]
    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.35 * len(rej) + 1)))
    ax.barh([f"{r['stage']}/{r['reason']}" for r in rej][::-1], [r["n"] for r in rej][::-1], color="#b55a4a")
    ax.set_xlabel("prompts")
    ax.set_title("Rejections by reason")
    save("rejections.png", fig)

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(stats["answer_chars"] or [0], bins=30, color="#5a9a5a")
    ax.set_xlabel("final answer length (characters)")
    ax.set_ylabel("traces")
    ax.set_title("Answer lengths")
    save("answer_lengths.png", fig)

    cats: dict[str, int] = {}
    for r in stats["categories"]:
        cats[r["category"]] = cats.get(r["category"], 0) + r["n"]
    top = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.35 * len(top) + 1)))
    ax.barh([k for k, _ in top][::-1], [v for _, v in top][::-1], color="#8a6ab5")
    ax.set_xlabel("prompts (all splits)")
    ax.set_title("Categories")
    save("categories.png", fig)
    return written
