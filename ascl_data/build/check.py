"""Checks of a recipe that need the stages (generator names, the rule book, source files), with the YAML line of
each problem. `ascl_data.recipe` stays a pure contract; this is the step that ties it to the package."""

from __future__ import annotations

from pathlib import Path

import yaml

from ascl_data.errors import YAML_LOADER, InputError, Problem, _line_of
from ascl_data.generators import get_generator
from ascl_data.recipe import Recipe, load_recipe
from ascl_data.rulebook import resolve_ruleset_path
from ascl_data.sources.local import expand_paths


def recipe_problems(recipe: Recipe, where: str) -> list[Problem]:
    """Unknown generators, a missing rule book, local sources that match no file."""
    problems: list[Problem] = []
    for i, g in enumerate(recipe.generators):
        try:
            get_generator(g.name)
        except InputError as exc:
            problems.extend(Problem(where, f"generators.{i}.name", p.message) for p in exc.problems)
    try:
        resolve_ruleset_path(recipe.ruleset)
    except FileNotFoundError as exc:
        problems.append(Problem(where, "ruleset", str(exc)))
    for i, spec in enumerate(recipe.sources):
        if spec.path and not spec.path.startswith("package:") and not expand_paths(spec.path):
            problems.append(Problem(where, f"sources.{i}.path", f"no file matches {spec.path!r}"))
    return problems


def check_recipe(path: str | Path) -> Recipe:
    """`load_recipe` plus the checks that need the stages; every problem names the file, line and field."""
    path = Path(path)
    recipe = load_recipe(path)
    problems = recipe_problems(recipe, str(path))
    if problems:
        raise InputError(f"recipe {path}", [_with_line(path, p) for p in problems])
    return recipe


def _with_line(path: Path, problem: Problem) -> Problem:
    """Add the YAML line of `problem.field` (checks made after parsing know the field, not the line)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError:
        return problem
    loc = tuple(int(part) if part.isdigit() else part for part in problem.field.split("."))
    line = _line_of(node, loc)
    return Problem(f"{path}:{line}" if line else str(path), problem.field, problem.message)
