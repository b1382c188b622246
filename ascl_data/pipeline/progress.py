"""Progress of a build as events: the build reports what happened, a listener shows it (a rich bar on a terminal,
a plain line every few seconds in a log or CI, nothing in tests or with --quiet). No state of the work lives here."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class BuildListener:
    """Hears a build's events; the default hears nothing."""

    def started(self, total: int | None) -> None:
        """The build begins; `total` prompts are expected (None: unknown)."""

    def prompts_done(self, n: int, traces: int, stored: int, rejected: int) -> None:
        """`n` more prompts are finished: `traces` became accepted sft traces, `stored` are rl/eval prompts kept
        without a teacher call, `rejected` became rejections."""

    def finished(self) -> None:
        """The last chunk is committed."""


class _Counts(BuildListener):
    """Running counts and rate, shared by the two displays."""

    def __init__(self) -> None:
        self.done = self.traces = self.stored = self.rejected = 0
        self.total: int | None = None
        self.t0 = time.perf_counter()

    def started(self, total: int | None) -> None:
        self.total, self.t0 = total, time.perf_counter()

    def prompts_done(self, n: int, traces: int, stored: int, rejected: int) -> None:
        self.done += n
        self.traces += traces
        self.stored += stored
        self.rejected += rejected

    def describe(self) -> str:
        return f"traces {self.traces}, stored {self.stored}, rejected {self.rejected}"

    def rate(self) -> str:
        elapsed = time.perf_counter() - self.t0
        return f"{self.done / elapsed:.2f} prompts/s" if elapsed > 0 else ""


class PlainProgress(_Counts):
    """One plain line every `every_s` seconds and at the end, for logs and CI, where a bar would show only at the
    end."""

    def __init__(self, console: Console, every_s: float = 10.0):
        super().__init__()
        self.console, self.every_s = console, every_s
        self._last = 0.0

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        elapsed = time.perf_counter() - self.t0
        self.console.print(f"build: {self.done}{of} prompts ({self.describe()}), {self.rate()}, {elapsed:.0f} s",
                           highlight=False, markup=False)
        self._last = time.perf_counter()

    def started(self, total: int | None) -> None:
        super().started(total)
        self._last = time.perf_counter()
        expected = f", {total} prompts expected" if total is not None else ""
        self.console.print(f"build: started{expected}", highlight=False, markup=False)

    def prompts_done(self, n: int, traces: int, stored: int, rejected: int) -> None:
        super().prompts_done(n, traces, stored, rejected)
        if time.perf_counter() - self._last >= self.every_s:
            self._line()

    def finished(self) -> None:
        self._line()


class RichProgress(_Counts):
    """A progress bar with the running counts and the rate. While it shows, the terminal's cursor is hidden: every
    way out (the end, an error, Ctrl-C: `stop_all`) stops it, which shows the cursor again."""

    _showing: ClassVar[set[RichProgress]] = set()

    def __init__(self, console: Console):
        super().__init__()
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("[cyan]{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                             console=console)

    def started(self, total: int | None) -> None:
        super().started(total)
        self._bar.start()
        RichProgress._showing.add(self)
        self._task = self._bar.add_task(f"[bold]building[/bold] {self.describe()}", total=total, rate="")

    def prompts_done(self, n: int, traces: int, stored: int, rejected: int) -> None:
        super().prompts_done(n, traces, stored, rejected)
        self._bar.update(self._task, advance=n, description=f"[bold]building[/bold] {self.describe()}",
                         rate=self.rate())

    def finished(self) -> None:
        RichProgress._showing.discard(self)
        self._bar.stop()

    @classmethod
    def stop_all(cls) -> None:
        """Stop every bar still showing (Ctrl-C ends the process at once, past any `finally`)."""
        for bar in list(cls._showing):
            bar.finished()


def progress_for(console: Console) -> BuildListener:
    """The bar on a terminal; plain periodic lines where output goes to a file or a CI log."""
    return RichProgress(console) if console.is_terminal else PlainProgress(console)
