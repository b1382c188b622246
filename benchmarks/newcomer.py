"""How long a newcomer needs from `git clone` to a loaded dataset, following only the README.

Clones this repository into a temporary folder, runs the README's command 1 there as written (`bash .ci/setup &&
.venv/bin/ascl-data build configs/quickstart.yaml`) with an empty cache home (`ASCL_DATA_HOME`, so the GGUF
conversion of the embedded teacher is included), then loads the `sft` split with `datasets.load_dataset`, as the
README's next block does. pip's own download cache is left as it is (a second install on the same machine is what
most newcomers meet; a first one also downloads the wheels). Writes `results/newcomer.json`.

    python benchmarks/newcomer.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, write_results  # noqa: E402

COMMAND_1 = "bash .ci/setup && .venv/bin/ascl-data build configs/quickstart.yaml"
LOAD = "from datasets import load_dataset; print(load_dataset('runs/quickstart', split='sft'))"  # the README's line


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.monotonic() - start, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = ap.parse_args()
    load = list(os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="ascl-newcomer-"))
    clone, home = work / "ascl-data", work / "home"
    # the clone sits beside a link to ../shared, as the repository does (its tests read ../shared/data)
    if (ROOT.parent / "shared").is_dir():
        (work / "shared").symlink_to(ROOT.parent / "shared")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(ASCL_DATA_HOME=str(home), HF_HUB_OFFLINE="1")
    steps: dict[str, dict[str, object]] = {}
    for name, cmd, cwd in (
        ("git clone", ["git", "clone", "-q", str(ROOT), str(clone)], work),
        ("command 1 (set-up and quickstart build)", ["bash", "-c", COMMAND_1], clone),
        ("load_dataset", [".venv/bin/python", "-c", LOAD], clone),
    ):
        seconds, proc = timed(cmd, cwd, env)
        steps[name] = {"seconds": round(seconds, 1), "returncode": proc.returncode}
        print(f"{name}: {seconds:.0f} s, rc {proc.returncode}", flush=True)
        if proc.returncode:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            break
        if name == "load_dataset":
            steps[name]["printed"] = " ".join(proc.stdout.split())
    ok = all(s["returncode"] == 0 for s in steps.values()) and len(steps) == 3
    cloned = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    write_results(ROOT / "benchmarks" / "results" / "newcomer.json", {
        "what": "from git clone to a loaded dataset, following only the README (command 1, then load_dataset), "
                "empty ASCL_DATA_HOME, pip's download cache as found",
        "cloned_commit": cloned, "steps": steps, "passed": ok,
        "total_seconds": round(sum(float(s["seconds"]) for s in steps.values()), 1),  # type: ignore[arg-type]
    }, load)
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
