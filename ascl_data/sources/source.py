"""One recipe source opened (a local file or a Hub dataset), its card entry, and the checks made before any
teacher call."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash
from pydantic import ValidationError

from ascl_data.errors import InputError, Problem
from ascl_data.recipe import Recipe, SourceSpec
from ascl_data.schemas import PromptRecord, Provenance, Rejection
from ascl_data.sources.adapters import ADAPTERS
from ascl_data.sources.normalise import RowError, normalise, passes

MAX_REPORTED = 20
log = logging.getLogger("ascl_data.sources")


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



class Source:
    """One recipe source, opened: yields (PromptRecord | Rejection) in a fixed order."""

    def __init__(self, spec: SourceSpec, index: int, seed: int):
        self.spec, self.index, self.seed = spec, index, seed
        self.field = f"sources.{index}"
        self.adapter = ADAPTERS.get(spec.adapter) if spec.adapter else None
        self._ds: Any = None
        self.rows: int | None = None  # rows seen by `preflight`, where it could count them

    @property
    def label(self) -> str:
        """How messages name the source: its field in the recipe and its file or dataset."""
        return f"{self.field} ({self.spec.path or self.info().dataset})"

    def content_id(self) -> str:
        """What the source's prompts are made of, for the build fingerprint: a hash of its files' bytes (local), or
        its Hub revision ("unpinned" where the Hub does not say, e.g. offline)."""
        if not self.is_local:
            return f"revision:{self.info(resolve_revision=True).revision or 'unpinned'}"
        from ascl_data.sources.local import expand_paths

        digest = hashlib.sha256()
        for path in expand_paths(self.spec.path or ""):
            digest.update(f"{path.name}\0".encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        return f"sha256:{digest.hexdigest()[:16]}"

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
            self.rows = 0
            try:
                for where, idx, row in self._raw_rows():
                    self.rows += 1
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
        self.rows = len(ds) if hasattr(ds, "__len__") and not self.spec.filters else None
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
    warn_if_short(recipe, sources)
    return sources


def source_ids(sources: list[Source]) -> dict[str, str]:
    """Each source's content id by its label: what the build fingerprint records, so a changed source is caught."""
    return {src.label: src.content_id() for src in sources}


def warn_if_short(recipe: Recipe, sources: list[Source]) -> None:
    """A warning (not an error: a small test build is legitimate) when a source has no rows, or when the sources
    hold fewer rows than the splits ask for, so a short dataset is never a surprise."""
    for src in sources:
        if src.rows == 0:
            log.warning("warning: source %s has no rows (after its filters): it adds no prompt", src.label)
    counts = [src.rows for src in sources]
    if recipe.splits.by_count and all(c is not None for c in counts):
        wanted = int(sum(recipe.splits.sizes().values()))
        have = sum(c for c in counts if c is not None)
        if have < wanted:
            log.warning("warning: the sources hold %d rows, fewer than the %d prompts the splits ask for (%s): the "
                        "splits will be short", have, wanted,
                        ", ".join(f"{k} {int(v)}" for k, v in recipe.splits.sizes().items()))


