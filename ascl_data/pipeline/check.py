"""Checks of a recipe that need the stages (generator names, the rule book, source files), with the YAML line of
each problem. `ascl_data.recipe` stays a pure contract; this is the step that ties it to the package."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ascl_data.errors import YAML_LOADER, InputError, Problem, load_yaml, locate
from ascl_data.generators import get_generator
from ascl_data.recipe import Recipe, load_recipe
from ascl_data.rulebook import resolve_ruleset_path
from ascl_data.sources.local import expand_paths


def model_problem(model: str | None, backend: str) -> str | None:
    """Why an in-process backend (`transformers`, `vllm`) cannot load `model`, found before anything is loaded: a
    local path with nothing there, or a Hub id that is not in the local Hugging Face cache while HF_HUB_OFFLINE is
    set (loading it would fail with a traceback, after the build or eval had started). None where it can."""
    if not model or model == "embedded":
        return None
    if model.startswith(("/", "./", "../", "~")):
        return None if Path(model).expanduser().exists() else f"no model at {model} (the path does not exist)"
    if backend not in ("transformers", "vllm") or Path(model).exists():
        return None
    import huggingface_hub.constants as hub_constants
    from huggingface_hub import try_to_load_from_cache

    if hub_constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(model, "config.json"), str):
        return (f"{model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot be "
                f"downloaded: download it first (`hf download {model}`, online), give a local folder, or unset "
                "HF_HUB_OFFLINE")
    return None


def teacher_problems(recipe: Recipe, where: str) -> list[Problem]:
    """What the teacher's settings cannot say alone (a model its backend needs and `teacher.model` does not name;
    unknown and bad settings already failed when the recipe was read) and a `teacher.model` that is a local path
    with nothing there: found by `--check`, before any model is loaded."""
    t = recipe.teacher
    problems: list[Problem] = []
    if why := model_problem(t.model, t.backend):
        problems.append(Problem(where, "teacher.model", why))
    try:
        t.backend_settings()
    except InputError as exc:
        problems += [Problem(where, p.field, p.message) for p in exc.problems]
    return problems


@cache
def hub_values() -> dict[str, Any]:
    """What the Hub accepts in a dataset card: licences, task categories with their task ids (vendored in
    `cards/hub_metadata.yaml`, which names its sources) and languages and size categories (from `datasets`' own
    resources, the lists its card validation used)."""
    data = yaml.safe_load((resources.files("ascl_data.cards") / "hub_metadata.yaml").read_text(encoding="utf-8"))
    from_datasets = resources.files("datasets.utils.resources")
    data["languages"] = json.loads((from_datasets / "languages.json").read_text(encoding="utf-8"))
    data["size_categories"] = json.loads((from_datasets / "size_categories.json").read_text(encoding="utf-8"))
    return data


def _not_allowed(where: str, field: str, value: str, allowed: list[str], what: str, hint: str = "") -> Problem:
    """`value` is refused by the Hub: say so and suggest the closest allowed value."""
    close = difflib.get_close_matches(value.lower(), allowed, n=1, cutoff=0.5)
    suggestion = hint or (f"; did you mean {close[0]!r}?" if close else "")
    return Problem(where, field, f"{value!r} is not a {what} the Hub accepts{suggestion}")


def card_problems(recipe: Recipe, where: str) -> list[Problem]:
    """Card metadata the Hub would refuse (licence id, task categories and ids, language codes), each with the
    closest valid value."""
    hub, card = hub_values(), recipe.card
    problems = []
    if card.license not in hub["licenses"]:
        problems.append(_not_allowed(where, "card.license", card.license, hub["licenses"], "licence id"))
    elif card.license == "other" and not card.license_name:
        problems.append(Problem(where, "card.license_name", "license: other needs a license_name (an id for the "
                                                            "licence) and its text in a LICENSE file or license_link"))
    categories: dict[str, list[str]] = hub["task_categories"]
    owner = {task_id: cat for cat, ids in categories.items() for task_id in ids}
    for i, cat in enumerate(card.task_categories):
        if cat not in categories:
            hint = f"; {cat!r} is a task id of {owner[cat]!r}: put it in task_ids" if cat in owner else ""
            problems.append(_not_allowed(where, f"card.task_categories.{i}", cat, list(categories), "task category",
                                         hint))
    for i, task_id in enumerate(card.task_ids):
        if task_id not in owner:
            hint = f"; {task_id!r} is a task category: put it in task_categories" if task_id in categories else ""
            problems.append(_not_allowed(where, f"card.task_ids.{i}", task_id, list(owner), "task id", hint))
    languages: dict[str, str] = hub["languages"]
    by_name = {name.lower(): code for code, name in languages.items()}
    for i, code in enumerate(card.language):
        if code not in languages:
            base = code.replace("_", "-").split("-")[0].lower()
            named = by_name.get(code.lower())
            hint = (f"; did you mean {named!r} ({languages[named]})?" if named else
                    f"; did you mean {base!r}? (a language code without region)" if base in languages else "")
            problems.append(_not_allowed(where, f"card.language.{i}", code, list(languages), "language code", hint))
    return problems


def recipe_problems(recipe: Recipe, where: str) -> list[Problem]:
    """Unknown generators, a missing rule book, local sources that match no file, teacher settings, card metadata
    the Hub refuses."""
    problems: list[Problem] = teacher_problems(recipe, where) + card_problems(recipe, where)
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
    try:
        recipe = load_recipe(path)
    except InputError as exc:  # a recipe that does not load: say as well whether its teacher's model is there
        more = [_with_line(path, p) for p in _teacher_model_problems(path)]
        if not more:
            raise
        raise InputError(exc.what, [*exc.problems, *more]) from None
    problems = recipe_problems(recipe, str(path))
    if problems:
        raise InputError(f"recipe {path}", [_with_line(path, p) for p in problems])
    return recipe


def _teacher_model_problems(path: Path) -> list[Problem]:
    """`teacher.model` read from the file as written (for a recipe that does not load as a whole)."""
    try:
        data, _ = load_yaml(path.read_text(encoding="utf-8"))  # aliases checked: no YAML bomb is expanded
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    teacher = data.get("teacher") if isinstance(data, dict) else None
    if not isinstance(teacher, dict) or not isinstance(teacher.get("model"), (str, type(None))):
        return []
    why = model_problem(teacher.get("model"), str(teacher.get("backend", "transformers")))
    return [Problem(str(path), "teacher.model", why)] if why else []


def _with_line(path: Path, problem: Problem) -> Problem:
    """Add the YAML line of `problem.field` (checks made after parsing know the field, not the line)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError:
        return problem
    loc = tuple(int(part) if part.isdigit() else part for part in problem.field.split("."))
    line, _ = locate(node, loc)
    return Problem(f"{path}:{line}" if line else str(path), problem.field, problem.message)
