"""Finding and loading rule books: the ones shipped in the wheel by name, or a user's own file."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from ascl_data.errors import load_yaml_model
from ascl_data.schemas import Ruleset

DEFAULT_RULESET = "default"


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
