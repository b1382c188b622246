"""MkDocs hook: pages name what they show, and the hook renders it from its one source, so docs cannot drift.

Five directives, each an HTML comment on a line of its own:

- `<!-- cli -->`: every command's `--help`, from the Typer app itself;
- `<!-- recipe -->`: every recipe field with its type, default and help, from the Pydantic models in `recipe.py`;
- `<!-- model MODULE:CLASS -->`: one Pydantic model's fields the same way (a backend's settings);
- `<!-- results FILE.json: key = label; key.sub = label; ... -->`: the named figures of
  `benchmarks/results/FILE.json` as a table, with the commit, date, CPU, load and command that the file records.
  A key that the file does not hold fails the build, so every figure on the page is one that a results file holds;
- `<!-- matrix FILE.json: PATH; a / b / c -->`: the mapping at PATH (column -> row -> figures) as a table, each
  cell the figures a, b, c joined by " / ", with the file's provenance.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import tokenize
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DIRECTIVE = re.compile(r"^<!-- (cli|recipe|model|results|matrix) ?(.*?) -->$", re.M)


class DocsError(Exception):
    """A directive that cannot be rendered: the build fails and names the page and the directive."""


# --------------------------------------------------------------------------- CLI


def render_cli() -> str:
    """`--help` of every command, as a user sees it (fixed width), in command-tree order."""
    import typer.main

    from ascl_data.cli import app

    out: list[str] = []

    def walk(cmd: Any, path: list[str], parent: Any) -> None:
        ctx = cmd.context_class(cmd, info_name=path[-1], parent=parent)
        if len(path) > 1:
            out.append(f"## `{' '.join(path)}`\n")
        out.append(f"```text\n{_plain_help(path)}\n```\n")
        for sub in cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else []:
            walk(cmd.get_command(ctx, sub), [*path, sub], ctx)

    walk(typer.main.get_command(app), ["ascl-data"], None)
    return "\n".join(out)


def _plain_help(path: list[str]) -> str:
    from typer.testing import CliRunner

    from ascl_data.cli import app

    # through the app as a user calls it (commands that print their own help, like `train sft`, included)
    env = {"COLUMNS": "86", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    result = CliRunner().invoke(app, [*path[1:], "--help"], env={**os.environ, **env}, color=False)
    if result.exit_code != 0:
        raise DocsError(f"`{' '.join(path)} --help` exited {result.exit_code}: {result.output[-500:]}")
    return result.output.rstrip()


# --------------------------------------------------------------------------- recipe


def _comments(cls: type) -> dict[str, str]:
    """Each field's help where it has no `Field(description=...)`: the comment lines right above the field, or its
    trailing `# comment`; a field a model inherits has the help its base class gives it (a subclass may override)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("ascl_data") and "model_fields" in dir(klass):
            found.update(_own_comments(klass))
    return found


def _own_comments(cls: type) -> dict[str, str]:
    import inspect

    source = inspect.getsource(cls)
    lines = source.splitlines()
    comments = {
        tok.start[0]: tok.string.lstrip("# ").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    found: dict[str, str] = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, line = [], node.lineno - 1
        while line in comments and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        trailing = [comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1) if n in comments]
        if above or trailing:
            found[node.target.id] = " ".join(above + trailing)
    return found


def _type_name(annotation: Any) -> str:
    """A type as a reader writes it: `str | None`, `dict[str, Any]`, `Literal['a', 'b']`; a validated type
    (`Annotated[str, ...]`, a union's tags) shows as its plain type."""
    import types

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin).replace("typing.", ""))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]" if args else name
    if annotation is type(None):
        return "None"
    if annotation is typing.Any:
        return "Any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _models_in(annotation: Any) -> list[type]:
    from pydantic import BaseModel

    found: list[type] = []
    stack = [annotation]
    while stack:
        a = stack.pop(0)  # in the order the annotation names them
        if isinstance(a, type) and issubclass(a, BaseModel):
            found.append(a)
        else:
            stack.extend(typing.get_args(a))
    return found


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
        from pydantic import TypeAdapter

        if hasattr(value, "model_dump"):
            return "(see below)"
        return f"`{json.dumps(TypeAdapter(Any).dump_python(value, mode='json'))}`"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{json.dumps(field.default, default=str)}`"


def _field_table(model: type) -> list[str]:
    rows = ["| field | type | default | what it does |", "|---|---|---|---|"]
    comments = _comments(model)
    for name, field in model.model_fields.items():
        help_ = field.description or comments.get(name, "")
        cells = [f"`{name}`", f"`{_type_name(field.annotation)}`", _default(field), help_]
        rows.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return rows


def render_model(arg: str) -> str:
    """`MODULE:CLASS`: that model's field table."""
    import importlib

    module, _, name = arg.strip().partition(":")
    return "\n".join(_field_table(getattr(importlib.import_module(module), name))) + "\n"


def render_recipe() -> str:
    """One table per model reachable from `Recipe`, fields in source order. A section that is one of several kinds
    (the teacher: one kind per backend) gets a table per kind, each followed by the tables of what only that kind
    has (its backend's settings)."""
    from ascl_data.recipe import Recipe

    seen: list[type] = []
    queue: list[tuple[str, type]] = [("", Recipe)]
    out: list[str] = []
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.append(model)
        doc = " ".join((model.__doc__ or "").split())
        out += [f"### `{path or 'recipe'}` ({model.__name__})\n", f"{doc}\n", *_field_table(model), ""]
        for name, field in model.model_fields.items():
            where = f"{path}.{name}" if path else name
            kinds = _models_in(field.annotation)
            if len(kinds) < 2:
                queue += [(where, sub) for sub in kinds]
                continue
            own = {kind: [(f"{where}.{n}", sub) for n, f in kind.model_fields.items()
                          for sub in _models_in(f.annotation)] for kind in kinds}
            shared = set.intersection(*({sub for _, sub in subs} for subs in own.values()))
            for kind in kinds:
                queue += [(where, kind), *((p, sub) for p, sub in own[kind] if sub not in shared)]
    return "\n".join(out)


# --------------------------------------------------------------------------- results

PROVENANCE = ("commit", "date", "cpu", "load", "command")


def _lookup(data: Any, dotted: str, file: str) -> Any:
    """The value at `a.b.c`; a key that holds dots itself (`cascade.0.3-0.7.share`) is matched whole, longest first."""
    value, parts = data, dotted.split(".")
    while parts:
        if isinstance(value, dict):
            n = next((n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in value), 0)
            if n:
                value, parts = value[".".join(parts[:n])], parts[n:]
                continue
        elif isinstance(value, list) and parts[0].isdigit() and int(parts[0]) < len(value):
            value, parts = value[int(parts[0])], parts[1:]
            continue
        raise DocsError(f"{file} holds no `{dotted}` (at `{parts[0]}`)")
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value)}`"
    return str(value)


def render_results(arg: str) -> str:
    """`FILE.json: key = label; key.sub = label; ...`: a figure table and the file's provenance."""
    file, _, keys = arg.partition(":")
    file = file.strip()
    path = RESULTS / file
    if not path.is_file():
        raise DocsError(f"no results file benchmarks/results/{file}")
    data = json.loads(path.read_text())
    missing = [k for k in PROVENANCE if k not in data]
    if missing:
        raise DocsError(f"benchmarks/results/{file} records no {', '.join(missing)}")
    rows = ["| figure | value |", "|---|---|"]
    for item in filter(None, (k.strip() for k in keys.split(";"))):
        key, _, label = (p.strip() for p in item.partition("="))
        rows.append(f"| {label or key} | {_fmt(_lookup(data, key, file))} |")
    load = data["load"]
    if isinstance(load, dict):
        load = ", ".join(f"{k} {' / '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in load.items())
    elif isinstance(load, list):
        load = " / ".join(map(str, load))
    commit = str(data["commit"])
    note = (" (recorded afterwards)" if "afterwards" in commit else "") + (
        " with uncommitted changes" if commit.endswith("+dirty") else "")
    source = (
        f"<small>From `benchmarks/results/{file}`: "
        f"`{data['command']}` at commit `{commit[:10]}`{note}, {data['date']}, {data['cpu']}, load {load}.</small>"
    )
    return ("\n".join(rows) + "\n\n" if len(rows) > 2 else "") + source + "\n"


def render_matrix(arg: str) -> str:
    """`FILE.json: PATH; a / b / c`: rows are the second-level keys under PATH, columns the first-level ones."""
    file, _, rest = arg.partition(":")
    where, _, cell = (p.strip() for p in rest.partition(";"))
    data = json.loads((RESULTS / file.strip()).read_text())
    table = _lookup(data, where, file.strip())
    keys = [k.strip() for k in cell.split("/")]
    cols = list(table)
    rows = list(dict.fromkeys(r for c in cols for r in table[c]))
    out = [f"| | {' | '.join(cols)} |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        cells = [" / ".join(_fmt(table[c][r][k]) for k in keys) if r in table[c] else "" for c in cols]
        out.append(f"| {r} | {' | '.join(cells)} |")
    return "\n".join(out) + "\n\n" + render_results(file)


RENDER = {"cli": lambda arg: render_cli(), "recipe": lambda arg: render_recipe(), "model": render_model,
          "results": render_results, "matrix": render_matrix}


def render(markdown: str, where: str = "page") -> str:
    """Every directive in `markdown` replaced by what it names."""

    def one(match: re.Match[str]) -> str:
        try:
            return RENDER[match.group(1)](match.group(2))
        except DocsError as exc:
            raise DocsError(f"{where}: {match.group(0)}: {exc}") from None

    text = DIRECTIVE.sub(one, markdown)
    seen: set[str] = set()

    def once(match: re.Match[str]) -> str:  # a file's provenance in full the first time, then by name
        if match.group(1) in seen:
            return f"<small>From `benchmarks/results/{match.group(1)}`, as above.</small>"
        seen.add(match.group(1))
        return match.group(0)

    return re.sub(r"^<small>From `benchmarks/results/([^`]+)`: .*?</small>$", once, text, flags=re.M)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:  # the MkDocs hook
    return render(markdown, page.file.src_path)



def on_files(files: Any, config: Any, **_: Any) -> Any:  # the MkDocs hook: plots from results files, as `results/`
    from mkdocs.structure.files import File

    for png in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"results/{png.name}", abs_src_path=str(png)))
    return files
