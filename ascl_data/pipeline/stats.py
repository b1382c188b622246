"""Build statistics with polars, read lazily from the written shards (so they stream, however large the build).

Tables: consultation rate by kind, categories, lengths, rejection reasons, tokens, and trace quality (the
per-trace fields of `ascl_data.pipeline.quality` by kind, answer diversity, the quality filters that warned, and
a seeded draw of example traces). Shown on the terminal with rich, saved as `stats/stats.json` and drawn as PNG
plots (matplotlib, Agg) for the dataset card.
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

from ascl_data.judge.config import JudgeConfig
from ascl_data.pipeline.layout import atomic_write_bytes
from ascl_data.recipe import QualityConfig, Recipe
from ascl_data.schemas import KINDS

DIVERSITY_SAMPLE = 20_000  # answers drawn (seeded) for the diversity measures, which hold their n-grams in memory
EXAMPLES_PER_KIND = 2


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
                  policies: dict[str, str] | None = None, quality: QualityConfig | None = None,
                  seed: int = 0, judge: JudgeConfig | None = None) -> dict[str, Any]:
    """Aggregates over the shards listed per split (as `DatasetWriter.finalize` returns them); `policies` (kind ->
    consultation policy) goes beside each kind's consultation rate; `quality` (the recipe's filters) and `seed`
    (the draw of example traces and of the answers the diversity is measured on) shape the quality tables; `judge`
    (the recipe's) with an uncertain band adds `uncertain`: the band, its second judge, the accepted traces a second
    judge decided, and the answers rejected as `uncertain`."""
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
        if "quality" in sft.collect_schema():  # shards written before the quality fields have none
            out["quality"] = quality_stats(sft, policies or {}, quality or QualityConfig(), seed)
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
    if judge is not None and judge.uncertain is not None:
        out["uncertain"] = uncertain_stats(sft, out["rejections"], judge)
    return out


def uncertain_stats(sft: pl.LazyFrame | None, rejections: list[dict[str, Any]], judge: JudgeConfig) -> dict[str, Any]:
    """How the judge's uncertain band was used: accepted traces a second judge decided (they carry an
    `uncertain_band` result) and answers rejected as `uncertain` (no second judge)."""
    from ascl_data.judge.behaviour import BAND, UNCERTAIN

    accepted = 0
    if sft is not None:
        banded = pl.col("judge").list.eval(pl.element().struct.field("judge") == BAND).list.any()
        accepted = int(sft.select(banded.sum()).collect().item() or 0)
    second = ("model judge" if judge.model_judge else
              "the smollm2 judge" if judge.uncertain_judge == "smollm2" else "none")
    return {"band": list(judge.uncertain or ()), "second_judge": second, "accepted_after_second_judge": accepted,
            "rejected": sum(r["n"] for r in rejections if r["reason"] == UNCERTAIN)}


# --------------------------------------------------------------------------- quality


def _answer() -> pl.Expr:
    return pl.col("messages").list.last().struct.field("content").fill_null("")


def quality_stats(sft: pl.LazyFrame, policies: dict[str, str], config: QualityConfig, seed: int) -> dict[str, Any]:
    """The quality section: the per-trace fields as rates by kind (beside the consultation policy), the filters
    that warned, the rater's mean scores, answer diversity, and a seeded draw of example traces per kind."""
    q = pl.col("quality")
    f = q.struct.field
    cites = (f("cited_rules").list.len() + f("unknown_rules").list.len()) > 0
    bad = (f("cited_not_retrieved").list.len() + f("unknown_rules").list.len()) > 0
    has_category = f("retrieval_fit").is_not_null()
    by_kind = (
        sft.group_by("kind")
        .agg(
            pl.len().alias("traces"),
            pl.col("consulted").mean().alias("consultation_rate"),
            has_category.sum().alias("with_category"),
            (f("retrieval_fit_rank") == 1).fill_null(False).filter(has_category).mean().alias("top_rule_in_category"),
            f("retrieval_fit_rank").is_not_null().filter(has_category).mean().alias("any_rule_in_category"),
            f("retrieval_fit").mean().alias("mean_retrieval_fit"),
            f("query_fit").mean().alias("mean_query_fit"),
            cites.mean().alias("cites_rules"),
            bad.mean().alias("hallucinated_citation"),
            (f("unknown_rules").list.len() > 0).mean().alias("unknown_rule_cited"),
            (f("tool_echo") >= config.max_tool_echo).filter(f("tool_echo").is_not_null()).mean()
            .alias("repeats_tool_response"),
            f("answer_chars").median().alias("median_answer_chars"),
            f("rating_helpful").mean().alias("mean_rating_helpful"),
            f("rating_rule_use").mean().alias("mean_rating_rule_use"),
        )
        .sort("kind")
        .collect()
    )
    rows = [{"kind": r["kind"], "policy": policies.get(r["kind"], "auto"), **{k: v for k, v in r.items() if k != "kind"}}
            for r in _records(by_kind)]
    flags = (sft.select(pl.col("kind"), f("flags").alias("reason")).explode("reason").drop_nulls("reason")
             .group_by("reason", "kind").agg(pl.len().alias("n")).sort(["reason", "kind"]).collect())
    return {
        "by_kind": rows,
        "warnings": _records(flags),
        "filters": config.model_dump(mode="json", exclude={"rater"}),
        "rater": {"enabled": config.rater is not None, "backend": config.rater.backend if config.rater else None},
        "diversity": answer_diversity(sft, seed),
        "examples": example_traces(sft, seed),
    }


def _draw(seed: int) -> pl.Expr:
    """A seeded, order-free draw: rank rows by a hash of their prompt id."""
    return pl.col("prompt_id").hash(seed=seed)


def answer_diversity(sft: pl.LazyFrame, seed: int, sample: int = DIVERSITY_SAMPLE) -> list[dict[str, Any]]:
    """Per kind: distinct word 1-, 2- and 3-grams over all word n-grams of the answers (1.0: no n-gram repeats),
    and the share of answers that are exact or near duplicates (MinHash, word 3-shingle Jaccard >= 0.8, as for
    prompts) of an earlier answer of the kind; over up to `sample` answers drawn by seed."""
    from ascl_data.sources.dedup import Deduplicator, normalise_text

    drawn = (sft.select("kind", "prompt_id", _answer().alias("answer")).sort(_draw(seed)).head(sample)
             .sort("kind", "prompt_id").collect())
    out = []
    for kind, answers in drawn.group_by("kind", maintain_order=True).agg(pl.col("answer")).iter_rows():
        grams: dict[int, tuple[set[tuple[str, ...]], int]] = {n: (set(), 0) for n in (1, 2, 3)}
        dedup = Deduplicator(exact=True, near=True, threshold=0.8, seed=seed)
        dups = 0
        for answer in answers:
            words = normalise_text(answer).split()
            for n, (seen, total) in grams.items():
                seen.update(zip(*(words[i:] for i in range(n))))
                grams[n] = (seen, total + max(0, len(words) - n + 1))
            dups += dedup.check(answer) is not None
        row: dict[str, Any] = {"kind": kind, "answers": len(answers)}
        for n, (seen, total) in grams.items():
            row[f"distinct_{n}"] = round(len(seen) / total, 4) if total else None
        row["near_duplicate_answers"] = round(dups / len(answers), 4) if answers else None
        out.append(row)
    return out


def _query(messages: list[dict[str, Any]]) -> str | None:
    for m in messages:
        for call in m.get("tool_calls") or []:
            try:
                return str(json.loads(call["function"]["arguments"]).get("query"))
            except (ValueError, AttributeError):
                return None
    return None


def _clip(text: str | None, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def example_traces(sft: pl.LazyFrame, seed: int, per_kind: int = EXAMPLES_PER_KIND) -> list[dict[str, Any]]:
    """A few traces per kind, drawn by seed, with their query, retrieved rules, answer and quality fields."""
    rows = (sft.with_columns(_draw(seed).alias("_draw"))
            .filter(pl.col("_draw").rank("ordinal").over("kind") <= per_kind)
            .sort("kind", "_draw")
            .select("prompt_id", "kind", "category", "messages", "retrieved_rule_ids", "verdict", "quality")
            .collect().to_dicts())
    out = []
    for r in rows:
        messages = r["messages"]
        prompt = next((m["content"] for m in messages if m["role"] == "user"), "")
        out.append({
            "prompt_id": r["prompt_id"], "kind": r["kind"], "category": r["category"], "prompt": _clip(prompt, 300),
            "query": _query(messages), "retrieved_rule_ids": r["retrieved_rule_ids"], "verdict": r["verdict"],
            "answer": _clip(messages[-1]["content"], 400),
            "quality": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in (r["quality"] or {}).items()},
        })
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
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else "n/a" if v is None else str(v) for v in r.values()))
    return table


def print_stats(stats: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(stderr=True)
    console.print(_table("Rows per split", [{"split": k, "rows": v} for k, v in stats["rows"].items()]))
    console.print(_table("Consultation rate by kind (sft)", stats["consultation_by_kind"]))
    console.print(_table("Lengths (sft)", stats["lengths"]))
    console.print(_table("Rejections", stats["rejections"]))
    if "uncertain" in stats:
        band = stats["uncertain"]
        console.print(_table("Judge's uncertain band", [{**band, "band": f"[{band['band'][0]:g}, {band['band'][1]:g}]"}]))
    console.print(_table("Tokens (sft)", [stats["tokens"]]))
    if "quality" in stats:
        cols = {"kind": "kind", "traces": "traces", "top_rule_in_category": "top rule in cat.",
                "mean_query_fit": "query fit", "hallucinated_citation": "halluc. cite",
                "repeats_tool_response": "copies tool", "median_answer_chars": "median chars"}
        console.print(_table("Trace quality by kind (sft)",
                             [{v: r[k] for k, v in cols.items()} for r in stats["quality"]["by_kind"]]))
        console.print(_table("Answer diversity (sft)", stats["quality"]["diversity"]))
        if stats["quality"]["warnings"]:
            console.print(_table("Quality warnings (kept traces)", stats["quality"]["warnings"]))
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

    if "quality" in stats:
        save("quality_by_kind.png", _quality_plot(plt, stats["quality"]["by_kind"]))
    return written


QUALITY_BARS = (  # (stats key, label): higher is better for the first three, lower for the last two
    ("top_rule_in_category", "top rule in the prompt's category"),
    ("mean_query_fit", "query fit (mean)"),
    ("cites_rules", "answer names a rule"),
    ("hallucinated_citation", "names a rule not retrieved / unknown"),
    ("repeats_tool_response", "copies the tool response"),
)


def _quality_plot(plt: Any, rows: list[dict[str, Any]]) -> Any:
    """Grouped bars per kind, one bar per rate; a rate that does not apply to a kind (no consulted trace, no
    category) is left out, not drawn as 0."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(QUALITY_BARS)
    colors = ("#4a7ab5", "#5a9a5a", "#8a6ab5", "#b55a4a", "#c9a13b")
    for i, ((key, label), color) in enumerate(zip(QUALITY_BARS, colors)):
        xs = [k + i * width for k, r in enumerate(rows) if r.get(key) is not None]
        ax.bar(xs, [r[key] for r in rows if r.get(key) is not None], width, label=label, color=color)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(rows))], [r["kind"] for r in rows])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of traces")
    ax.set_title("Trace quality by kind")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
