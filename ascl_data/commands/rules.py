"""`ascl-data rules ...` and `ascl-data validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ascl_data.rulebook import DEFAULT_RULESET, load_ruleset
from ascl_data.rule_tool import DEFAULT_TOP_K, MAX_TOP_K, RuleTool, RuleToolError

console = Console()
rules_app = typer.Typer(help="Browse and search a rule book.", no_args_is_help=True)

RulesetOpt = Annotated[
    str, typer.Option("--ruleset", "-r", help="A shipped rule book name (default, compact) or a YAML file.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@rules_app.command("list")
def list_rules(
    ruleset: RulesetOpt = DEFAULT_RULESET,
    category: Annotated[Optional[str], typer.Option("--category", "-c", help="Only this category.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the rules of a rule book."""
    book = load_ruleset(ruleset)
    if category and category not in book.category_ids:
        raise typer.BadParameter(f"unknown category {category!r}; known: {', '.join(book.category_ids)}")
    rules = [r for r in book.rules if category is None or r.category == category]
    if as_json:
        _echo_json([{"id": r.id, "category": r.category, "title": r.title} for r in rules])
        return
    table = Table(title=f"{book.name} v{book.version}: {len(rules)} rules", show_lines=False)
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("title")
    for r in rules:
        table.add_row(r.id, r.title)
    console.print(table)


@rules_app.command("show")
def show_rule(rule_id: Annotated[str, typer.Argument(help="Rule id, e.g. weapons_cbrn/explosives.")],
              ruleset: RulesetOpt = DEFAULT_RULESET, as_json: JsonOpt = False) -> None:
    """Show one rule with its cases."""
    book = load_ruleset(ruleset)
    try:
        rule = book.get(rule_id)
    except KeyError as exc:
        console.print(f"[red]error:[/red] {exc.args[0]}")
        raise typer.Exit(1) from None
    if as_json:
        _echo_json(rule.as_tool_result())
        return
    body = [f"[bold]{rule.title}[/bold]  ({rule.category})", "", rule.text, "", "[green]allowed[/green]"]
    body += [f"  - {x}" for x in rule.allowed]
    body += ["[red]disallowed[/red]"] + [f"  - {x}" for x in rule.disallowed]
    body += ["[yellow]borderline[/yellow]"]
    body += [f"  - {c.request}\n    [dim]allowed:[/dim] {c.allowed}" for c in rule.borderline]
    console.print(Panel("\n".join(body), title=rule.id, expand=False))


@rules_app.command("search")
def search_rules(
    query: Annotated[str, typer.Argument(help="What to look up, in plain words.")],
    ruleset: RulesetOpt = DEFAULT_RULESET,
    category: Annotated[Optional[list[str]], typer.Option("--category", "-c", help="Search within (repeatable).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=MAX_TOP_K)] = DEFAULT_TOP_K,
    as_json: JsonOpt = False,
) -> None:
    """Rank rules against a query with the same index the model's tool uses."""
    tool = RuleTool(load_ruleset(ruleset))
    try:
        hits = tool.search(query, category, top_k)
    except RuleToolError as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        _echo_json([{"id": h.rule.id, "score": round(h.score, 4), "title": h.rule.title} for h in hits])
        return
    if not hits:
        console.print(f"no rule matched {query!r}: it shares no word with the rule book {tool.ruleset.name}",
                      markup=False, highlight=False)
        return
    table = Table(title=f"top {top_k} for {query!r}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("title")
    for i, h in enumerate(hits, 1):
        table.add_row(str(i), f"{h.score:.2f}", h.rule.id, h.rule.title)
    console.print(table)


def validate(
    path: Annotated[Path, typer.Argument(help="A rule book YAML, a .jsonl/.parquet file of traces, or a dataset folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a rule book or traces; print every problem with where it is; exit 1 on any."""
    from ascl_data.validate import validate_path

    what, count, problems = validate_path(path)
    if as_json:
        _echo_json({"path": str(path), "kind": what, "checked": count,
                    "problems": [{"where": p.where, "field": p.field, "message": p.message} for p in problems]})
    elif problems:
        console.print(f"[red]{len(problems)} problem(s)[/red] in {path} ({what}, {count} checked):")
        for p in problems:
            console.print(f"  {p}", markup=False, highlight=False)
    else:
        console.print(f"[green]ok[/green] {path}: {count} {'rules' if what == 'ruleset' else 'traces'} valid")
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
    app.command("validate")(validate)
