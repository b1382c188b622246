"""Progress of a build as events: the build reports what happened, a listener shows it (a rich bar on a terminal,
nothing in tests or with --quiet). No state of the work lives here."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class BuildListener:
    """Hears a build's events; the default hears nothing."""

    def started(self, total: int | None) -> None:
        """The build begins; `total` prompts are expected (None: unknown)."""

    def prompts_done(self, n: int, accepted: int, rejected: int) -> None:
        """`n` more prompts are finished, of which `accepted` became rows and `rejected` rejections."""

    def finished(self) -> None:
        """The last chunk is committed."""


class RichProgress(BuildListener):
    """A progress bar with the running counts and the rate."""

    def __init__(self, console: Console):
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("[cyan]{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                             console=console)
        self._accepted = self._rejected = self._done = 0
        self._started = time.perf_counter()

    def _describe(self) -> str:
        return f"[bold]building[/bold] accepted {self._accepted} rejected {self._rejected}"

    def started(self, total: int | None) -> None:
        self._started = time.perf_counter()
        self._bar.start()
        self._task = self._bar.add_task(self._describe(), total=total, rate="")

    def prompts_done(self, n: int, accepted: int, rejected: int) -> None:
        self._done += n
        self._accepted += accepted
        self._rejected += rejected
        elapsed = time.perf_counter() - self._started
        rate = f"{self._done / elapsed:.2f} prompts/s" if elapsed > 0 else ""
        self._bar.update(self._task, advance=n, description=self._describe(), rate=rate)

    def finished(self) -> None:
        self._bar.stop()
