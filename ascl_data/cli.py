"""The `ascl-data` command line."""

from __future__ import annotations

import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

from ascl_data import __version__
from ascl_data.commands import build, rules, train
from ascl_data.commands import eval as eval_command
from ascl_data.errors import AsclError
from ascl_data.lazy import missing_extra

app = typer.Typer(
    name="ascl-data",
    help="Build, validate, publish and train on ASCL safety-alignment datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ascl-data {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Build, validate, publish and train on ASCL safety-alignment datasets."""


for module in (build, rules, train, eval_command):
    module.register(app)


def run() -> None:
    """Console entry point: user errors print as one clear message, not a traceback; warnings as one line."""
    warnings.formatwarning = lambda message, category, *_: f"warning: {message}\n"
    try:
        app()
    except AsclError as exc:  # escaped: a message may hold brackets (`pip install 'ascl-data[train]'`)
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(2)
    except FileNotFoundError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    except ImportError as exc:  # an optional part (an extra) not installed: the line that installs it
        missing = missing_extra(exc)
        if missing is None:
            raise
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(missing))}", markup=True, highlight=False)
        sys.exit(2)
