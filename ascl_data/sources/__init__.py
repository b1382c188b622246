"""Prompt sources: Hub datasets and local files, normalised to PromptRecords with provenance, mixed,
deduplicated and decontaminated, as one deterministic stream.

`preflight(recipe)` checks every source before any teacher call: local files row by row (a bad row is named by
file, line and field), Hub datasets by loading them and checking the mapped columns exist. `prompt_stream(recipe)`
then yields PromptRecords and source-stage Rejections in a fixed order for a fixed seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash
from pydantic import ValidationError

from ascl_data.errors import InputError, Problem
from ascl_data.recipe import Filter, Recipe, SourceSpec
from ascl_data.schemas import KINDS, PromptMessage, PromptRecord, Provenance, Rejection
from ascl_data.sources.adapters import ADAPTERS, Adapter
from ascl_data.sources.decontam import Decontaminator
from ascl_data.sources.dedup import Deduplicator

MAX_REPORTED = 20


class RowError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SourceInfo:
    """What the dataset card says about a source."""

    name: str
    dataset: str
    config: str | None
    split: str | None
    revision: str | None
    license: str | None
    adapter: str | None


# --------------------------------------------------------------------------- rows -> records


def passes(row: dict[str, Any], filters: list[Filter]) -> bool:
    for f in filters:
        value = row.get(f.column)
        text = "" if value is None else str(value)
        ok = {
            "eq": lambda: value == f.value,
            "ne": lambda: value != f.value,
            "in": lambda: value in f.value,
            "not_in": lambda: value not in f.value,
            "contains": lambda: str(f.value) in text,
            "not_contains": lambda: str(f.value) not in text,
            "regex": lambda: re.search(str(f.value), text) is not None,
            "min_length": lambda: len(text) >= f.value,
            "max_length": lambda: len(text) <= f.value,
        }[f.op]()
        if not ok:
            return False
    return True


def _messages(value: Any, column: str) -> list[PromptMessage]:
    if not isinstance(value, list) or not value:
        raise RowError(column, "expected a non-empty list of {role, content} messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise RowError(f"{column}[{i}]", "expected a {role, content} object")
        try:
            out.append(PromptMessage(role=m.get("role"), content=m.get("content")))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            raise RowError(f"{column}[{i}].{'.'.join(map(str, err['loc']))}", err["msg"]) from None
    if out[-1].role != "user":
        raise RowError(column, "the last message must be a user turn")
    return out


def normalise(spec: SourceSpec, adapter: Adapter | None, row: dict[str, Any], index: int,
              provenance: Provenance) -> PromptRecord:
    """One raw row -> PromptRecord, or RowError naming the column that is wrong."""
    cols = spec.columns
    base: dict[str, Any] = {}
    if adapter is not None:
        missing = [c for c in adapter.required if c not in row]
        if missing:
            raise RowError(missing[0], f"column missing (the {adapter.name!r} adapter needs {list(adapter.required)})")
        converted = adapter.convert(row)
        if converted is None:
            raise RowError("", f"the {adapter.name!r} adapter found no usable prompt in this row")
        base = dict(converted)
    # explicit column mappings override the adapter
    if cols.messages:
        if cols.messages not in row:
            raise RowError(cols.messages, "column missing")
        messages = _messages(row[cols.messages], cols.messages)
    else:
        prompt_col = cols.prompt
        prompt = row.get(prompt_col) if prompt_col else base.get("prompt")
        if prompt_col and prompt_col not in row:
            raise RowError(prompt_col, "column missing")
        if not isinstance(prompt, str):
            raise RowError(prompt_col or "prompt", f"expected text, got {type(prompt).__name__}")
        if not prompt.strip():
            raise RowError(prompt_col or "prompt", "empty prompt")
        messages = [PromptMessage(role="user", content=prompt)]
        if cols.system and row.get(cols.system):
            messages.insert(0, PromptMessage(role="system", content=str(row[cols.system])))
    kind = spec.kind
    if kind is None and cols.kind:
        if cols.kind not in row:
            raise RowError(cols.kind, "column missing")
        raw = row[cols.kind]
        kind = spec.kind_map.get(str(raw), raw)
        if kind not in KINDS:
            hint = f" (map it with kind_map)" if spec.kind_map or raw not in KINDS else ""
            raise RowError(cols.kind, f"{raw!r} is not a kind; expected one of {list(KINDS)}{hint}")
    if kind is None:
        kind = base.get("kind")
    category = spec.category or (row.get(cols.category) if cols.category else None) or base.get("category")
    reference = row.get(cols.reference) if cols.reference else base.get("reference")
    return PromptRecord(
        messages=messages,
        kind=kind,
        category=str(category) if category not in (None, "") else None,
        reference=str(reference) if reference not in (None, "") else None,
        provenance=provenance.model_copy(update={"row": index}),
    )


# --------------------------------------------------------------------------- one source


class Source:
    """One recipe source, opened: yields (PromptRecord | Rejection) in a fixed order."""

    def __init__(self, spec: SourceSpec, index: int, seed: int):
        self.spec, self.index, self.seed = spec, index, seed
        self.field = f"sources.{index}"
        self.adapter = ADAPTERS.get(spec.adapter) if spec.adapter else None
        self._ds: Any = None

    @property
    def is_local(self) -> bool:
        return self.spec.path is not None

    def info(self, resolve_revision: bool = False) -> SourceInfo:
        from ascl_data.sources import hub

        if self.is_local:
            return SourceInfo(self.spec.name or "", Path(self.spec.path or "").name, None, None, None,
                              self.spec.license, None)
        dataset, config, split = hub.resolved_location(self.spec, self.adapter)
        local_folder = Path(dataset).exists()
        revision = self.spec.revision
        if resolve_revision and not local_folder:
            revision = hub.revision_of(self.spec, self.adapter)
        lic = self.spec.license or (self.adapter.license if self.adapter else None)
        return SourceInfo(self.spec.name or "", Path(dataset).name if local_folder else dataset, config, split,
                          revision, lic, self.spec.adapter)

    def _provenance(self) -> Provenance:
        i = self.info()
        return Provenance(dataset=i.dataset, config=i.config, split=i.split, revision=i.revision)

    def _raw_rows(self) -> Iterator[tuple[str, int, dict[str, Any]]]:
        spec = self.spec
        if self.is_local:
            from ascl_data.sources.local import iter_local_rows

            rows = ((w, i, r) for i, (w, r) in enumerate(iter_local_rows(spec.path or "", spec.format or "jsonl")))
            rows = ((w, i, r) for w, i, r in rows if passes(r, spec.filters))
            if spec.shuffle and spec.sample is not None:
                yield from _reservoir(rows, spec.sample, self.seed)
                return
            for n, item in enumerate(rows):
                if spec.sample is not None and n >= spec.sample:
                    return
                yield item
            return
        from ascl_data.sources import hub

        ds = self._ds if self._ds is not None else hub.load(spec, self.adapter, self.field)
        self._ds = None
        for where, row in hub.iter_hub_rows(ds, spec, self.adapter, lambda r: passes(r, spec.filters), self.seed):
            idx = int(where.rsplit(" ", 1)[-1])
            yield where, idx, row

    def records(self, strict: bool) -> Iterator[PromptRecord | Rejection]:
        """Normalised records; a bad row raises (strict, for local files) or becomes a `source` Rejection."""
        prov = self._provenance()
        for where, idx, row in self._raw_rows():
            try:
                record = normalise(self.spec, self.adapter, row, idx, prov)
            except (RowError, ValidationError) as exc:
                field = exc.field if isinstance(exc, RowError) else ""
                message = str(exc) if isinstance(exc, RowError) else exc.errors(include_url=False)[0]["msg"]
                if strict:
                    raise InputError(f"source {self.spec.name}", [Problem(where, field, message)]) from None
                pid = xxhash.xxh64_hexdigest(f"{self.spec.name}:{idx}".encode())
                yield Rejection(prompt_id=f"row-{pid}", stage="source", reason="invalid_record",
                                detail=f"{where}: {field + ': ' if field else ''}{message}", raw=str(row)[:2000])
                continue
            yield record

    # -- checks before any teacher call ----------------------------------------
    def preflight(self) -> list[Problem]:
        """Local files: every row normalises. Hub: the dataset loads and the mapped columns exist."""
        problems: list[Problem] = []
        if self.is_local:
            try:
                for where, idx, row in self._raw_rows():
                    try:
                        normalise(self.spec, self.adapter, row, idx, self._provenance())
                    except RowError as exc:
                        problems.append(Problem(where, exc.field, str(exc)))
                    except ValidationError as exc:
                        err = exc.errors(include_url=False)[0]
                        problems.append(Problem(where, ".".join(map(str, err["loc"])), err["msg"]))
                    if len(problems) >= MAX_REPORTED:
                        break
            except InputError as exc:
                problems.extend(exc.problems)
            return problems
        from ascl_data.sources import hub

        try:
            ds = hub.load(self.spec, self.adapter, self.field)
        except InputError as exc:
            return exc.problems
        names = hub.column_names(ds)
        cols = self.spec.columns
        wanted = [c for c in (cols.prompt, cols.messages, cols.kind, cols.category, cols.reference, cols.system) if c]
        wanted += [f.column for f in self.spec.filters]
        if self.adapter:
            wanted += list(self.adapter.required)
        dataset, config, split = hub.resolved_location(self.spec, self.adapter)
        for c in wanted:
            if names is not None and c not in names:
                problems.append(Problem(f"{dataset} config={config} split={split}", f"{self.field}.columns",
                                        f"column {c!r} not in the dataset; it has {names}"))
        self._ds = ds if not problems else None  # reuse the loaded dataset for the stream
        return problems


def _reservoir(rows: Iterator[tuple[str, int, dict]], k: int, seed: int) -> Iterator[tuple[str, int, dict]]:
    """A seeded uniform sample of k rows, emitted in their original order (holds k rows, never more)."""
    rng = random.Random(seed)
    sample: list[tuple[str, int, dict]] = []
    for n, item in enumerate(rows):
        if n < k:
            sample.append(item)
        else:
            j = rng.randrange(n + 1)
            if j < k:
                sample[j] = item
    yield from sorted(sample, key=lambda t: t[1])


# --------------------------------------------------------------------------- the whole stream


def open_sources(recipe: Recipe) -> list[Source]:
    return [Source(spec, i, recipe.seed + i) for i, spec in enumerate(recipe.sources)]


def preflight(recipe: Recipe, sources: list[Source] | None = None) -> list[Source]:
    """Check all sources and evaluation sets; raise one InputError listing every problem found."""
    sources = sources or open_sources(recipe)
    problems: list[Problem] = []
    for src in sources:
        problems.extend(src.preflight())
    for i, spec in enumerate(recipe.decontamination.against):
        ev = Source(spec, i, recipe.seed)
        ev.field = f"decontamination.against.{i}"
        problems.extend(ev.preflight())
    if problems:
        raise InputError("sources", problems[:MAX_REPORTED])
    return sources


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
    from ascl_data.generators.jailbreak import wrap_jailbreak

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
