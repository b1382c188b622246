"""Checks of a recipe that need the stages (generator names, the rule book, source files), with the YAML line of
each problem. `ascl_data.recipe` stays a pure contract; this is the step that ties it to the package."""

from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from ascl_data.errors import YAML_LOADER, InputError, Problem, _line_of
from ascl_data.generators import get_generator
from ascl_data.recipe import Recipe, load_recipe
from ascl_data.rulebook import resolve_ruleset_path
from ascl_data.sources.local import expand_paths


def teacher_problems(recipe: Recipe, where: str) -> list[Problem]:
    """Settings the teacher backend does not take (or, for `openai`, values it refuses) and a `teacher.model` that
    is a local path with nothing there: found by `--check`, before any model is loaded."""
    from pydantic import ValidationError

    from ascl_data.backends import backend_class

    t = recipe.teacher
    problems: list[Problem] = []
    if t.model and t.model.startswith(("/", "./", "../", "~")) and not Path(t.model).expanduser().exists():
        problems.append(Problem(where, "teacher.model", f"no model at {t.model} (the path does not exist)"))
    cls = backend_class(t.backend)
    if t.backend == "openai":
        from ascl_data.backends.openai_backend import OpenAISettings

        settings = {**t.settings, **({"model": t.model} if t.model else {})}
        try:
            OpenAISettings.model_validate(settings)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(map(str, err["loc"]))
                field = "teacher.model" if field == "model" else f"teacher.settings.{field}"
                problems.append(Problem(where, field, err["msg"].removeprefix("Value error, ")))
        return problems
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        known = sorted(n for n in params if n not in ("self", "model"))
        for key in t.settings:
            if key not in params or key == "model":
                problems.append(Problem(where, f"teacher.settings.{key}",
                                        f"the {t.backend} backend has no setting {key!r}; it has {known}"))
    return problems


def recipe_problems(recipe: Recipe, where: str) -> list[Problem]:
    """Unknown generators, a missing rule book, local sources that match no file, teacher settings."""
    problems: list[Problem] = teacher_problems(recipe, where)
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
