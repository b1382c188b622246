"""Errors that name the file, the line, the field and what is wrong, before any teacher call is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: The values a YAML file may hold once its aliases are expanded (each use of an alias counts its whole value
#: again). Far above any recipe or config; a "billion laughs" file (1 KB of nested aliases, 10^9 values) passes a
#: parser, then eats the memory of whatever walks the data (validation, hashing).
MAX_YAML_VALUES = 100_000


class YAMLExpansionError(yaml.YAMLError):
    """A YAML file whose aliases expand past `MAX_YAML_VALUES` values, or refer to themselves."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = None


def _expanded_size(root: yaml.Node) -> int:
    """How many values `root` stands for with every alias expanded (at most MAX_YAML_VALUES + 1: counting stops
    there), in time linear in the composed nodes (an alias is one shared node). A node that contains itself is an
    error."""
    cap = MAX_YAML_VALUES + 1
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if closing:
            size[id(node)] = min(cap, 1 + sum(size[id(c)] for c in children))
            open_.discard(id(node))
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise YAMLExpansionError("an alias refers to the value that contains it (a recursive alias)")
        open_.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                raise YAMLExpansionError("an alias refers to the value that contains it (a recursive alias)")
            if id(child) not in size:
                stack.append((child, False))
    return size[id(root)]


def load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """YAML text as data (safe types only), with its composed node tree (for the lines of later errors). Aliases
    are checked before any value is built: past `MAX_YAML_VALUES` expanded values it is a `YAMLExpansionError`,
    a `yaml.YAMLError` like any other parse error."""
    loader = YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node) > MAX_YAML_VALUES:
            raise YAMLExpansionError(
                f"its aliases (*name) expand to more than {MAX_YAML_VALUES:,} values, which no recipe or config "
                "needs (a file built to exhaust memory looks like this); write the values out, or use fewer aliases")
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


@dataclass(frozen=True)
class Problem:
    where: str  # "file:line" or "file" or "row 12"
    field: str  # dotted path, "" for the whole item
    message: str

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{self.where}:{field} {self.message}"


class AsclError(Exception):
    """Base of the package's user-facing errors; the CLI prints them without a traceback."""


class FatalError(AsclError):
    """A fault no retry or rejection can fix (bad credentials, unknown model, a corrupt or full cache): it stops the
    build with its cause instead of turning every prompt into a rejection. The tool loop re-raises it."""


class HubError(AsclError):
    """The Hugging Face Hub refused a push or could not be reached; says which step, why and what to do."""


class InputError(AsclError):
    """Bad input: each problem says where it is and what is wrong."""

    def __init__(self, what: str, problems: list[Problem]):
        self.what = what
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what}: {len(problems)} problem(s)\n{lines}")


def locate(node: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[int | None, tuple[Any, ...]]:
    """Walk a composed YAML node tree along a pydantic error location: the 1-based line reached, and the location
    as the user wrote it (a tagged union's tag, e.g. `target` in `splits.sft.target.accepted`, is not a key of the
    file: a part that is not a key while the next one is gets left out)."""
    line = node.start_mark.line + 1 if node is not None else None
    shown: list[Any] = []
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            keys = {getattr(k, "value", None): v for k, v in node.value}
            if part not in keys and i + 1 < len(loc) and loc[i + 1] in keys:
                continue
            nxt = keys.get(part)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        shown.append(part)
        if nxt is None:
            shown.extend(loc[i + 1:])
            break
        node = nxt
        line = node.start_mark.line + 1
    return line, tuple(shown)


def validation_problems(exc: ValidationError, where: str, node: yaml.Node | None = None) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        line, shown = locate(node, loc) if node is not None else (None, loc)
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(Problem(f"{where}:{line}" if line else where, ".".join(map(str, shown)), msg))
    return problems


def utf8_problem(where: str, data: bytes, exc: UnicodeDecodeError, first_line: int = 1) -> Problem:
    """Where the first byte that is not UTF-8 is, as `file:line` and column, with the byte shown (`data` may be
    one line of a file: `first_line` is its number)."""
    line = data.count(b"\n", 0, exc.start) + first_line
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return Problem(f"{where}:{line}", "", f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} "
                   "(save the file as UTF-8)")


def read_utf8(path: Path, what: str) -> str:
    """A text file's content; a file with bytes that are not UTF-8 is an InputError naming the line and column."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(what, [utf8_problem(str(path), data, exc)]) from None


def load_yaml_model(path: str | Path, model: type[M], what: str) -> M:
    """Parse a YAML file into a pydantic model, with errors that name file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(what, [Problem(str(path), "", "file not found")])
    text = read_utf8(path, what)
    try:
        data, node = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(what, [Problem(where, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise InputError(what, [Problem(str(path), "", f"expected a mapping at the top, got {type(data).__name__}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(what, validation_problems(exc, str(path), node)) from None
