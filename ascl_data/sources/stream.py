"""The prompt stream: every source mixed by weight (seeded), jailbreak-wrapped where asked, deduplicated and
decontaminated, in a fixed order for a fixed seed."""

from __future__ import annotations

import random
from collections.abc import Iterator

import xxhash

from ascl_data.recipe import Recipe, SourceSpec
from ascl_data.schemas import PromptRecord, Rejection
from ascl_data.sources.decontam import Decontaminator
from ascl_data.sources.dedup import Deduplicator
from ascl_data.sources.jailbreak import wrap_jailbreak
from ascl_data.sources.source import Source, open_sources


def _mix(streams: list[Iterator], weights: list[float], strategy: str, seed: int) -> Iterator:
    if strategy == "concat":
        for s in streams:
            yield from s
        return
    rng = random.Random(seed)
    live = list(range(len(streams)))
    while live:
        pick = rng.choices(live, weights=[weights[i] for i in live])[0]
        try:
            yield next(streams[pick])
        except StopIteration:
            live.remove(pick)


def _jailbreak(record: PromptRecord, spec: SourceSpec, seed: int) -> PromptRecord:
    wrap = spec.jailbreak
    if wrap is None or record.kind != "harmful":
        return record
    h = xxhash.xxh64_intdigest(record.id.encode(), seed)
    if (h % 10_000) / 10_000 >= wrap.fraction:
        return record
    style = wrap.styles[(h >> 16) % len(wrap.styles)]
    return wrap_jailbreak(record, style, seed)


def _prompt_text(record: PromptRecord) -> str:
    return "\n".join(m.content for m in record.messages if m.role != "system")


def build_decontaminator(recipe: Recipe) -> Decontaminator:
    cfg = recipe.decontamination
    deco = Decontaminator(cfg.ngram, cfg.min_overlap)
    for i, spec in enumerate(cfg.against):
        ev = Source(spec, i, recipe.seed)
        texts = (_prompt_text(r) for r in ev.records(strict=False) if isinstance(r, PromptRecord))
        deco.add_eval_texts(spec.name or f"eval{i}", texts)
    return deco


def prompt_stream(recipe: Recipe, sources: list[Source] | None = None) -> Iterator[PromptRecord | Rejection]:
    """Every prompt from every source, mixed, deduplicated and decontaminated, in a fixed order."""
    sources = sources or open_sources(recipe)
    streams = [
        (_jailbreak(r, src.spec, recipe.seed) if isinstance(r, PromptRecord) else r for r in src.records(strict=src.is_local))
        for src in sources
    ]
    d = recipe.dedup
    dedup = Deduplicator(d.exact, d.near, d.threshold, d.num_perm, d.shingle, seed=recipe.seed)
    deco = build_decontaminator(recipe)
    taken = 0
    for item in _mix(streams, [s.spec.weight for s in sources], recipe.mix.strategy, recipe.seed):
        if recipe.mix.max_prompts is not None and taken >= recipe.mix.max_prompts:
            return
        taken += 1
        if isinstance(item, Rejection):
            yield item
            continue
        text = _prompt_text(item)
        dup = dedup.check(text) if (d.exact or d.near) else None
        if dup:
            yield Rejection(prompt_id=item.id, kind=item.kind, stage="source", reason=dup,
                            detail=("the same normalised text as an earlier prompt" if dup == "duplicate" else
                                    f"near-duplicate of an earlier prompt (MinHash LSH, Jaccard ~{d.threshold})"),
                            raw=item.model_dump_json())
            continue
        bad, detail = deco.check(text)
        if bad:
            yield Rejection(prompt_id=item.id, kind=item.kind, stage="source", reason="contaminated", detail=detail,
                            raw=item.model_dump_json())
            continue
        yield item
