"""`ascl-data build RECIPE` and `ascl-data push FOLDER ORG/NAME`."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ascl_data.publish import RejectsMode
    from ascl_data.recipe import Recipe


def register(app: typer.Typer) -> None:
    app.command("build")(build_command)
    app.command("push")(push_command)


def build_command(
    recipe: Path = typer.Argument(..., help="The recipe YAML file.", show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (overrides output.dir)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing build of another recipe."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed",
        help="Send again the prompts whose rejection was transient (backend errors, judge outages); every other "
             "row stays byte-identical."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload to this Hub dataset ORG/NAME."),
    public: bool = typer.Option(False, "--public", help="Create the Hub repository public (private by default)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub branch to push to."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Hub tag to create on the pushed commit."),
    dry_run: Optional[Path] = typer.Option(None, "--dry-run", help="With --push-to-hub: copy what would be uploaded here instead."),
    no_rejects: bool = typer.Option(False, "--no-rejects", help="With --push-to-hub: leave the rejects split out."),
    rejects_raw: bool = typer.Option(
        False, "--rejects-raw", help="With --push-to-hub: push the rejects with the teacher's raw output (harmful "
                                     "text included); by default it is left out."),
    check: bool = typer.Option(False, "--check", help="Validate the recipe and its sources, then stop (no teacher call)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    limit: Optional[int] = typer.Option(
        None, "--limit", min=1,
        help="Preview: run the first N prompts through the whole build into a scratch folder (never output.dir, "
             "never pushed) and print each trace."),
) -> None:
    """Build a dataset from a recipe: sources -> teacher traces -> judge -> parquet shards, stats and card.

    Run it again after an interruption: finished work is kept and no teacher call is repeated."""
    from ascl_data.pipeline import Build, check_recipe, print_summary

    console = Console(stderr=True)
    spec = check_recipe(recipe)
    if limit is not None and not check:
        _preview(spec, limit, console, output=output, push_to_hub=push_to_hub, quiet=quiet)
        return
    if output is not None:
        spec.output.dir = str(output.resolve())
    if push_to_hub is not None:
        from ascl_data.publish import check_repo_id

        check_repo_id(push_to_hub)  # before the build, not after hours of teacher calls
        rejects = _rejects_mode(no_rejects, rejects_raw)
        if dry_run is None:
            from ascl_data.publish import check_token

            check_token(push_to_hub)
    job = Build(spec, overwrite=overwrite, retry_failed=retry_failed, console=console, progress=not quiet, repo_id=push_to_hub)
    if check:
        job.check()
        console.print(f"[green]ok[/green]: recipe {recipe} and its {len(spec.sources)} source(s) are valid")
        return
    with _stop_on_ctrl_c(console):
        result = job.run()
    if not quiet:
        print_summary(result.summary, console)
    console.print(f"dataset: {result.out_dir}  (datasets.load_dataset({str(result.out_dir)!r}))")
    if push_to_hub is not None:
        _push(result.out_dir, push_to_hub, private=spec.hub.private and not public,
              revision=revision or spec.hub.revision, tag=tag or spec.hub.tag, dry_run=dry_run, rejects=rejects,
              console=console)


def _preview(spec: Recipe, limit: int, console: Console, *, output: Path | None, push_to_hub: str | None,
             quiet: bool) -> None:
    """`build --limit N`: the recipe's first N prompts into its scratch folder, then the traces on stdout."""
    from ascl_data.pipeline import Build
    from ascl_data.pipeline.preview import preview_recipe, print_preview
    from ascl_data.errors import InputError, Problem

    for given, flag in ((output, "--output"), (push_to_hub, "--push-to-hub")):
        if given is not None:
            raise InputError("ascl-data build", [Problem("command line", flag, "a preview (--limit) is written to a "
                                                     "scratch folder and never pushed; drop --limit or this option")])
    job = Build(preview_recipe(spec, limit), overwrite=True, console=console, progress=not quiet)
    with _stop_on_ctrl_c(console):
        result = job.run()
    shown = print_preview(result.out_dir, Console())
    console.print(f"preview of {shown} prompt(s): {result.summary.sft} accepted traces, {result.summary.rejected} "
                  f"rejected; scratch folder {result.out_dir} (the recipe's output.dir is untouched)")


@contextmanager
def _stop_on_ctrl_c(console: Console) -> Iterator[None]:
    """Ctrl-C stops the build at once (not after the generation in flight) and says how to go on. Safe because every
    write is atomic and the resume markers are written last: what was committed stays, the rest is redone."""

    def stop(signum: int, frame: object) -> None:
        from ascl_data.pipeline.progress import RichProgress

        RichProgress.stop_all()  # os._exit runs no `finally`: the bar would leave the terminal's cursor hidden
        console.show_cursor(True)
        console.print("\n[yellow]stopped[/yellow]: finished chunks are kept; run the same command again and the build "
                      "resumes where it stopped (no finished teacher call is repeated)")
        os._exit(130)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _rejects_mode(no_rejects: bool, rejects_raw: bool) -> RejectsMode:
    from ascl_data.errors import InputError, Problem

    if no_rejects and rejects_raw:
        raise InputError("push", [Problem("command line", "--no-rejects/--rejects-raw",
                                          "they contradict each other: choose one")])
    return "none" if no_rejects else "raw" if rejects_raw else "redacted"


def _push(folder: Path, repo_id: str, *, private: bool, revision: str | None, tag: str | None,
          dry_run: Path | None, rejects: RejectsMode, console: Console) -> None:
    from ascl_data.publish import push_folder

    result = push_folder(folder, repo_id, private=private, revision=revision, tag=tag, dry_run=dry_run,
                         rejects=rejects)
    if result.dry_run_dir is not None:
        console.print(f"dry run: the {len(result.files)} files that would go to {repo_id} are in {result.dry_run_dir}")
    else:
        visibility = "private" if private else "public"
        removed = f", removed {len(result.deleted)} stale file(s) of an earlier push" if result.deleted else ""
        console.print(f"pushed {len(result.files)} files to {repo_id} ({visibility}){removed}: {result.url}")


def push_command(
    folder: Path = typer.Argument(..., help="A folder made by `ascl-data build`.", show_default=False),
    repo_id: str = typer.Argument(..., help="The Hub dataset repository, ORG/NAME.", show_default=False),
    public: bool = typer.Option(False, "--public", help="Create the repository public (private by default)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to push to."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Tag to create on the pushed commit."),
    dry_run: Optional[Path] = typer.Option(None, "--dry-run", help="Copy exactly what would be uploaded here instead."),
    no_rejects: bool = typer.Option(False, "--no-rejects", help="Leave the rejects split out."),
    rejects_raw: bool = typer.Option(
        False, "--rejects-raw", help="Push the rejects with the teacher's raw output (harmful text included); by "
                                     "default it is left out."),
) -> None:
    """Upload a built dataset folder to the Hugging Face Hub (token from HF_TOKEN or `hf auth login`) in one commit
    that also removes files an earlier push left and this build no longer has."""
    _push(folder, repo_id, private=not public, revision=revision, tag=tag, dry_run=dry_run,
          rejects=_rejects_mode(no_rejects, rejects_raw), console=Console(stderr=True))
