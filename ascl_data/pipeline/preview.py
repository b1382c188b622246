"""A preview of a recipe (`ascl-data build RECIPE --limit N`): its first N prompts through the whole path (sources,
dedup, generator, teacher, rule tool, judge, writer) into a scratch folder, then each trace printed readably, so
a user sees what the teacher and the judge make of the recipe before committing to a long build.

The scratch folder is one per recipe name under the user's own cache (`$ASCL_DATA_HOME/previews/<recipe name>`,
by default `~/.cache/ascl-data/previews/...`), never the recipe's `output.dir`, and a preview is never pushed. Not
the system's temporary folder: a path there is predictable and shared, so another user could put a symbolic link
where the preview goes (a preview replaces what it finds there). The `previews` folder is made private (0700), and
a symbolic link or a folder another user owns in either place is refused. A preview run again resumes there (no
teacher call repeated); after an edit of the recipe its folder is replaced, but the teacher cache in it is kept, so
unchanged requests cost nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from ascl_data.embedded import cache_home
from ascl_data.errors import InputError, Problem
from ascl_data.pipeline.layout import Layout
from ascl_data.recipe import Recipe, SplitConfig

ANSWER_CHARS = 400  # an answer longer than this is cut in the preview (the dataset keeps it whole)


def _private_folder(path: Path) -> None:
    """Make `path` (mode 0700) or check the one there: a real folder, owned by this user."""
    try:
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)  # whatever the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError("preview", [Problem(str(path), "", f"cannot be made: {exc.strerror or exc}")]) from None
    why = None
    if path.is_symlink():
        why = f"is a symbolic link (to {os.readlink(path)})"
    elif not path.is_dir():
        why = "is not a folder"
    elif path.stat().st_uid != os.getuid():
        why = f"is owned by another user (uid {path.stat().st_uid})"
    if why:
        raise InputError("preview", [Problem(str(path), "", f"{why}; a preview writes only into a folder of its own, "
                                             "so nothing was written. Remove it, or set ASCL_DATA_HOME to a folder "
                                             "of yours")])


def scratch_dir(recipe: Recipe) -> Path:
    """Where a preview of this recipe is built, `<ASCL_DATA_HOME>/previews/<recipe name>`: made (private) or
    checked here, so that a link or another user's folder is refused before anything is written."""
    previews = cache_home() / "previews"
    folder = previews / (re.sub(r"[^\w.-]+", "-", recipe.name).lstrip(".") or "recipe")
    _private_folder(previews)
    _private_folder(folder)
    return folder


def preview_recipe(recipe: Recipe, limit: int) -> Recipe:
    """The recipe cut to its first `limit` prompts, all sent to the teacher, written to the scratch folder without
    plots."""
    preview = recipe.model_copy(deep=True)
    preview.splits = SplitConfig(sft=limit, rl=0, eval=0)
    preview.output.dir = str(scratch_dir(recipe))
    preview.output.plots = False
    return preview


def _cut(text: str | None, limit: int = ANSWER_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _user_text(messages: list[dict[str, Any]]) -> str:
    return next((m["content"] or "" for m in reversed(messages) if m["role"] == "user"), "")


def _tool_calls(messages: list[dict[str, Any]]) -> list[str]:
    """Each tool call as `name(arguments as JSON)`, in the order the teacher made them (the tool loop keeps only
    calls whose arguments are JSON)."""
    calls = []
    for m in messages:
        for call in m.get("tool_calls") or []:
            args = call["function"]["arguments"]
            args = json.loads(args) if isinstance(args, str) else args
            calls.append(f"{call['function']['name']}({json.dumps(args, ensure_ascii=False)})")
    return calls


def _line(label: str, value: str, style: str = "") -> Text:
    return Text.assemble((f"{label}: ", "bold"), (value, style))


def _trace_panel(n: int, row: dict[str, Any]) -> Panel:
    messages = row["messages"]
    lines = [_line("prompt", _cut(_user_text(messages), 200))]
    lines += [_line("tool call", c, "cyan") for c in _tool_calls(messages)] or [_line("tool call", "none (direct)")]
    if row["consulted"]:
        lines.append(_line("retrieved rules", ", ".join(row["retrieved_rule_ids"]) or "none", "cyan"))
    lines.append(_line("answer", _cut(messages[-1]["content"])))
    kind = escape(f"{row['kind']}{' / ' + row['category'] if row['category'] else ''}")
    title = f"{n}. {kind}: [green]accepted[/green] (verdict {row['verdict']}, attempt {row['attempts']})"
    return Panel(Group(*lines), title=title, title_align="left", border_style="green")


def _raw_messages(raw: str) -> tuple[list[dict[str, Any]] | None, str | None]:
    """A rejection's conversation and the teacher's unparsed last reply, from its `raw` column: the tool loop
    stores `{"messages": [...], "raw_text": ...}`, the judge the message list, anything else is plain text."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return None, raw or None
    if isinstance(payload, dict) and isinstance(payload.get("messages"), list):
        return payload["messages"], payload.get("raw_text")
    return (payload, None) if isinstance(payload, list) else (None, raw)


def _rule_ids(messages: list[dict[str, Any]]) -> list[str]:
    """The rule ids the rule tool returned in a conversation (a rejection keeps no `retrieved_rule_ids`)."""
    ids: list[str] = []
    for m in messages:
        if m["role"] == "tool":
            try:
                rules = json.loads(m["content"]).get("rules") or []
            except (ValueError, AttributeError):
                continue
            ids += [r["id"] for r in rules if isinstance(r, dict) and r.get("id") and r["id"] not in ids]
    return ids


def _rejection_panel(n: int, row: dict[str, Any]) -> Panel:
    lines = []
    messages, raw_text = _raw_messages(row["raw"])
    if messages:
        lines.append(_line("prompt", _cut(_user_text(messages), 200)))
        lines += [_line("tool call", c, "cyan") for c in _tool_calls(messages)]
        if ids := _rule_ids(messages):
            lines.append(_line("retrieved rules", ", ".join(ids), "cyan"))
        answer = next((m.get("content") for m in reversed(messages) if m["role"] == "assistant"), None)
        if answer:
            lines.append(_line("answer", _cut(answer)))
    if raw_text:
        lines.append(_line("raw output", _cut(raw_text)))
    lines += [_line("reason", f"{row['stage']}/{row['reason']}", "red"), _line("detail", _cut(row["detail"]))]
    return Panel(Group(*lines), title=f"{n}. {row['kind'] or '?'}: [red]rejected[/red]", title_align="left",
                 border_style="red")


def print_preview(root: Path, console: Console) -> int:
    """Every accepted trace, then every rejection, of the build in `root`; returns how many were shown."""
    layout = Layout(root)
    traces = [r for p in layout.shards("sft") for r in pq.read_table(p).to_pylist()]
    rejections = [r for p in layout.shards("rejects") for r in pq.read_table(p).to_pylist()]
    panels = [_trace_panel(i + 1, r) for i, r in enumerate(traces)]
    panels += [_rejection_panel(len(traces) + i + 1, r) for i, r in enumerate(rejections)]
    for panel in panels:
        console.print(panel)
    return len(panels)
