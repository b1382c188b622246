"""Where a figure came from: every results file records the commit, the date, the CPU, the load and the command.

`write_results(path, data)` adds them and writes the JSON; the docs render figures from these files only
(`docs/hooks.py`), so a figure in the docs is always one that a results file holds, with how it was made.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name (`/proc/cpuinfo` on Linux), with the cores this process may use."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cores} cores"


def commit() -> str:
    """HEAD's sha, with `+dirty` when the work tree has uncommitted changes to tracked files."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("+dirty" if dirty else "")


def provenance(load_at_start: list[float] | None = None) -> dict[str, Any]:
    """The five keys every results file holds. `load` is the 1/5/15-minute load average at start (if given) and now."""
    now = [round(x, 2) for x in os.getloadavg()]
    script = Path(sys.argv[0]).resolve()
    argv = [script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0], *sys.argv[1:]]
    return {
        "commit": commit(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "load": {"start": load_at_start, "end": now} if load_at_start else now,
        "command": "python " + shlex.join(argv),
    }


def write_results(path: Path, data: dict[str, Any], load_at_start: list[float] | None = None) -> None:
    """Write `data` to `path` as JSON with the provenance keys first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = provenance(load_at_start)
    record |= {k: v for k, v in data.items() if k not in record}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
