"""Rule books: the models of a rule, a category and a versioned rule book, and finding and loading them (the
ones shipped in the wheel by name, or a user's own file). Errors name file, line and field."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ascl_data.errors import load_yaml_model
from ascl_data.schemas import StrictModel, _non_blank

DEFAULT_RULESET = "default"
RULE_ID = re.compile(r"^[a-z0-9_]+/[a-z0-9][a-z0-9-]*$")
CATEGORY_ID = re.compile(r"^[a-z0-9_]+$")


class BorderlineCase(StrictModel):
    """A request near the line, with what the assistant may do for it (where over-refusal lives)."""

    request: str
    allowed: str

    @field_validator("request", "allowed")
    @classmethod
    def _filled(cls, v: str, info: Any) -> str:
        return _non_blank(v, info.field_name)


class Rule(StrictModel):
    """One case-augmented safety rule."""

    id: str
    category: str
    title: str
    text: str
    allowed: list[str] = Field(min_length=1)
    disallowed: list[str] = Field(min_length=1)
    borderline: list[BorderlineCase] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not RULE_ID.match(v):
            raise ValueError(f"rule id {v!r} is not of the form '<category>/<kebab-slug>'")
        return v

    @field_validator("title", "text")
    @classmethod
    def _filled(cls, v: str, info: Any) -> str:
        return _non_blank(v, info.field_name)

    @field_validator("allowed", "disallowed")
    @classmethod
    def _examples_filled(cls, v: list[str], info: Any) -> list[str]:
        for i, example in enumerate(v):
            _non_blank(example, f"{info.field_name}[{i}]")
        return v

    @model_validator(mode="after")
    def _id_matches_category(self) -> Rule:
        if self.id.split("/", 1)[0] != self.category:
            raise ValueError(f"rule id {self.id!r} does not start with its category {self.category!r}")
        return self

    def search_text(self) -> str:
        """The text the retrieval index sees: everything a user's wording might match."""
        parts = [self.title, self.text, *self.allowed, *self.disallowed]
        for case in self.borderline:
            parts += [case.request, case.allowed]
        return "\n".join(parts)

    def as_tool_result(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "title": self.title,
            "text": self.text,
            "allowed": self.allowed,
            "disallowed": self.disallowed,
            "borderline": [c.model_dump() for c in self.borderline],
        }


class Category(StrictModel):
    id: str
    title: str
    description: str

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not CATEGORY_ID.match(v):
            raise ValueError(f"category id {v!r} must be snake_case")
        return v

    @field_validator("title", "description")
    @classmethod
    def _filled(cls, v: str, info: Any) -> str:
        return _non_blank(v, info.field_name)


class PolicySource(StrictModel):
    name: str
    url: str | None = None


class Ruleset(StrictModel):
    """A versioned rule book. Loading fails loudly on duplicate ids, unknown categories and empty text."""

    name: str
    version: str
    description: str = ""
    license: str
    sources: list[PolicySource] = Field(default_factory=list)
    categories: list[Category] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)

    @field_validator("name", "version", "license")
    @classmethod
    def _filled(cls, v: str, info: Any) -> str:
        return _non_blank(v, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> Ruleset:
        """Cross-item checks, each reported at its item's location so that a YAML error names the right line."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen_cat: set[str] = set()
        for i, cat in enumerate(self.categories):
            if cat.id in seen_cat:
                problems.append((("categories", i, "id"), f"duplicate category id {cat.id!r}"))
            seen_cat.add(cat.id)
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                problems.append((("rules", i, "id"), f"duplicate rule id {rule.id!r} (first at rules[{seen[rule.id]}])"))
            else:
                seen[rule.id] = i
            if rule.category not in seen_cat:
                problems.append((("rules", i, "category"),
                                 f"unknown category {rule.category!r}; known: {sorted(seen_cat)}"))
        if problems:
            # A ValidationError raised here keeps each problem's location (a ValueError would sit at the root).
            raise ValidationError.from_exception_data(type(self).__name__, [
                InitErrorDetails(type=PydanticCustomError("ruleset", "{message}", {"message": message}), loc=loc, input=None)
                for loc, message in problems
            ])
        return self

    @property
    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r} in rule book {self.name} {self.version}")

    def fingerprint(self) -> str:
        """Content hash, so caches and cards can tell two editions of one version apart."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading


def builtin_rulesets() -> dict[str, Path]:
    """Rule books shipped inside the package, by file stem."""
    root = resources.files("ascl_data.rulesets")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith((".yaml", ".yml"))}


def resolve_ruleset_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return path
    shipped = builtin_rulesets()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise FileNotFoundError(
        f"no rule book {str(name_or_path)!r}: not a file, and not one of the shipped ones {sorted(shipped)}"
    )


@lru_cache(maxsize=16)
def _load(path: Path, mtime: float) -> Ruleset:
    return load_yaml_model(path, Ruleset, what=f"rule book {path}")


def load_ruleset(name_or_path: str | Path = DEFAULT_RULESET) -> Ruleset:
    """Load a shipped rule book by name ("default", "compact") or any YAML file; cached per file version."""
    path = resolve_ruleset_path(name_or_path).resolve()
    if not path.is_file():
        return load_yaml_model(path, Ruleset, what=f"rule book {path}")  # raises the clear "not found"
    return _load(path, path.stat().st_mtime)
