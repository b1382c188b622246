"""Imports run one way: a module imports only from its own layer or the layers below (docs/architecture.md).

Two checks: every `import` in the source, deferred ones inside functions included, obeys the layers (a circle held
together by deferred imports is still a circle); and each module, imported alone in a fresh interpreter, loads
nothing of a higher layer.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"ascl_data": ROOT / "ascl_data", "ascl_data.generators": ROOT / "generators", "ascl_data.rl": ROOT / "rl"}
# lowest first; a module belongs to the layer of its longest matching prefix
LAYERS = [
    ["ascl_data.lazy", "ascl_data.errors", "ascl_data.secrets", "ascl_data.schemas", "ascl_data.toolcalls",
     "ascl_data.chat_format", "ascl_data.rulebook", "ascl_data.rule_tool", "ascl_data.prompts", "ascl_data.overrides",
     "ascl_data.judge.config", "ascl_data.backends.base", "ascl_data.backends.consult_policy",
     "ascl_data.backends.names", "ascl_data.backends.settings", "ascl_data.backends.configs", "ascl_data.sources.adapters",
     "ascl_data.row_schema", "ascl_data.weights"],
    ["ascl_data.recipe"],
    ["ascl_data.backends", "ascl_data.judge", "ascl_data.sources", "ascl_data.cache", "ascl_data.tool_loop",
     "ascl_data.validate", "ascl_data.embedded", "ascl_data.embedded_adapter", "ascl_data.testing"],
    ["ascl_data.generators"],
    ["ascl_data.pipeline", "ascl_data.publish"],
    ["ascl_data.rl", "ascl_data.evaluation"],
    ["ascl_data.commands", "ascl_data.cli", "ascl_data.__main__"],
]


def layer(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def modules() -> dict[str, Path]:
    """Every module of the package, by its import name (the generators and rl folders install under ascl_data)."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            if package == "ascl_data" and parts and parts[0] in ("generators", "rl"):
                continue  # links some work trees keep; the real folders are read under their own names
            found[".".join([package, *parts])] = path
    found.pop("ascl_data")  # the package's face: lazy exports of every layer, imported by nothing inside
    return found


FACES = {name for name, path in modules().items() if path.name == "__init__.py" and "lazy_exports(" in path.read_text()}


def test_package_faces_that_lower_layers_load_are_lazy() -> None:
    """Importing `ascl_data.backends.names` runs `ascl_data/backends/__init__.py`: such a face must load nothing."""
    for face in ("ascl_data.backends", "ascl_data.judge", "ascl_data.sources"):
        assert face in FACES, f"{face}/__init__.py must only hand names on (lazy_exports)"


def imported(name: str, path: Path) -> set[str]:
    """Every ascl_data module that `path` imports, wherever in the file."""
    out: set[str] = set()
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {t for t in out if t.startswith("ascl_data.")}


def test_every_module_has_a_layer() -> None:
    assert [m for m in modules() if layer(m) is None] == []


def test_source_imports_run_downward() -> None:
    upward = [f"{name} ({layer(name)}) imports {target} ({layer(target)})"
              for name, path in modules().items() for target in sorted(imported(name, path))
              if layer(target) is not None and layer(target) > layer(name)]  # type: ignore[operator]
    assert upward == []


def _loaded_by(module: str) -> list[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m.startswith('ascl_data'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, f"import {module} failed alone:\n{result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_each_module_alone_loads_nothing_above_it() -> None:
    names = [m for m in modules() if not m.endswith("__main__")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        loaded = dict(zip(names, pool.map(_loaded_by, names)))
    # a package's face loads whenever one of its modules does: it must be lazy (`ascl_data.lazy`), and is not counted
    upward = [f"{name} loads {other}" for name, mods in loaded.items() for other in mods
              if layer(other) is not None and layer(other) > layer(name)  # type: ignore[operator]
              and other not in FACES]
    assert upward == []
