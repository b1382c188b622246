"""What a build did, added up chunk by chunk, and its table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ascl_data.pipeline.runner import ChunkCounts
from ascl_data.recipe import Prices


@dataclass
class BuildSummary:
    prompts_in: int = 0
    sft: int = 0
    rl: int = 0
    eval: int = 0
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0  # teacher usage of every prompt, accepted or rejected, all attempts
    completion_tokens: int = 0
    teacher_calls: int = 0
    prices: Prices | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    chunks_resumed: int = 0
    seconds: float = 0.0
    target: int | None = None  # `splits.sft.accepted`
    not_needed: int = 0  # sft prompts drawn after the target was met (never sent, not in prompts_in)

    @property
    def accepted(self) -> int:
        return self.sft + self.rl + self.eval

    def add(self, counts: ChunkCounts) -> None:
        self.prompts_in += counts.prompts_in
        self.sft += counts.sft
        self.rl += counts.rl
        self.eval += counts.eval
        self.rejected += counts.rejects
        self.rejected_by_reason.update(counts.reasons)
        self.prompt_tokens += counts.prompt_tokens
        self.completion_tokens += counts.completion_tokens
        self.teacher_calls += counts.teacher_calls
        self.not_needed += counts.not_needed

    @property
    def cost(self) -> float | None:
        """What the teacher's tokens cost at the recipe's `teacher.prices` (None without prices)."""
        return self.prices.cost(self.prompt_tokens, self.completion_tokens) if self.prices is not None else None

    def usage(self) -> dict[str, Any]:
        """Teacher usage over the whole build (committed chunks of earlier runs included)."""
        out: dict[str, Any] = {"teacher_calls": self.teacher_calls, "prompt_tokens": self.prompt_tokens,
                               "completion_tokens": self.completion_tokens}
        if self.cost is not None:
            out["cost"] = round(self.cost, 6)
        return out

    def target_report(self) -> dict[str, Any] | None:
        """Whether `splits.sft.accepted` was met; the only other way a build with a target ends is that the
        prompt stream (the sources, or `mix.max_prompts`) ran dry."""
        if self.target is None:
            return None
        met = self.sft >= self.target
        return {"split": "sft", "accepted": self.target, "reached": self.sft, "met": met,
                "ended_by": "target met" if met else "sources ran dry"}

    def for_card(self) -> dict[str, Any]:
        target = {"target": self.target_report()} if self.target is not None else {}
        return {"prompts_in": self.prompts_in, "accepted": self.accepted, "sft": self.sft, "rl": self.rl,
                "eval": self.eval, "rejected": self.rejected, **self.usage(), **target}

    def for_log(self) -> dict[str, Any]:
        target = {"target": self.target_report(), "not_needed": self.not_needed} if self.target is not None else {}
        return {"prompts_in": self.prompts_in, "cache_hits": self.cache_hits, "cache_misses": self.cache_misses,
                "chunks_resumed": self.chunks_resumed, **self.usage(), **target}


@dataclass
class BuildResult:
    out_dir: Path
    summary: BuildSummary
    files: dict[str, list[str]]
    stats: dict[str, Any]


def print_summary(summary: BuildSummary, console: Console) -> None:
    table = Table(title="Build summary", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("n", justify="right")
    table.add_row("prompts in", str(summary.prompts_in))
    table.add_row("sft traces accepted", str(summary.sft))
    table.add_row("rl / eval prompts stored (no teacher call)", f"{summary.rl + summary.eval} (rl {summary.rl}, "
                  f"eval {summary.eval})")
    if (target := summary.target_report()) is not None:
        table.add_row("target (accepted sft traces)",
                      f"{target['reached']} of {target['accepted']}: {target['ended_by']}")
    table.add_row("rejected", str(summary.rejected))
    for reason, n in sorted(summary.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"  {reason}", str(n))
    table.add_row("teacher calls", str(summary.teacher_calls))
    table.add_row("tokens (prompt / completion)", f"{summary.prompt_tokens} / {summary.completion_tokens}")
    if summary.cost is not None:
        table.add_row("cost (teacher.prices)", f"{summary.cost:.4f}")
    table.add_row("teacher cache (hits / misses)", f"{summary.cache_hits} / {summary.cache_misses}")
    if summary.chunks_resumed:
        table.add_row("chunks resumed", str(summary.chunks_resumed))
    table.add_row("time", f"{summary.seconds:.1f}s")
    console.print(table)
