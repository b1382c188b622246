"""Run the docs' slow blocks as written (not their CI stand-ins) and record which passed and how long each took.

CI runs each block marked `<!-- docs-test: ci COMMAND -->` as COMMAND (a tiny model, one step); this runs the
block itself (`ASCL_DOCS_AS_WRITTEN=1`), as a reader would, before an issue touching it is resolved. Two kinds of
marked block are not run here, and the results file says why: the set-up blocks (`bash .ci/setup && ...`, which
would re-point this checkout's editable install at a temporary copy; they are timed on a fresh clone instead,
`benchmarks/newcomer.py`) and `mkdocs serve` (a server that runs until stopped;
`mkdocs build --strict` is its test).

    python benchmarks/docs_as_written.py                # every slow block, about an hour on 2 busy cores
    python benchmarks/docs_as_written.py README.md#5    # one block; the others keep their last record
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import ROOT, commit, write_results  # noqa: E402

BLOCKS = ["README.md#5", "docs/evaluation.md#0", "docs/training.md#1"]
NOT_RUN = {
    "README.md#0": "set-up block (bash .ci/setup): timed on a fresh clone instead (newcomer.py)",
    "docs/getting-started.md#0": "set-up block (bash .ci/setup): timed on a fresh clone instead (newcomer.py)",
    "README.md#6": "mkdocs serve runs until stopped; test_site_builds_strict builds the site",
}


def main() -> None:
    load = list(os.getloadavg())
    junit = ROOT / "runs" / "docs_as_written.xml"
    junit.parent.mkdir(exist_ok=True)
    chosen = sys.argv[1:] or BLOCKS
    unknown = sorted(set(chosen) - set(BLOCKS))
    if unknown:
        sys.exit(f"not a slow block: {unknown}; the slow blocks are {BLOCKS}")
    ids = [f"tests/test_docs.py::test_block_runs[{b}]" for b in chosen]
    ran = commit()  # the commit the blocks ran on (HEAD may move while they run)
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *ids],
                          cwd=ROOT, env={**os.environ, "ASCL_DOCS_AS_WRITTEN": "1"})
    out = ROOT / "benchmarks" / "results" / "docs_as_written.json"
    blocks = json.loads(out.read_text())["blocks"] if out.is_file() else {}
    blocks = {b: blocks[b] for b in BLOCKS if b in blocks}
    for case in ET.parse(junit).iter("testcase"):
        name = case.get("name", "")
        block = name[name.find("[") + 1 : -1]
        failed = case.find("failure") is not None or case.find("error") is not None
        blocks[block] = {"passed": not failed and case.find("skipped") is None,
                         "seconds": round(float(case.get("time", 0)), 1), "commit": ran,
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    write_results(out, {
        "what": "the docs' slow blocks run as written (ASCL_DOCS_AS_WRITTEN=1), not their CI stand-ins",
        "blocks": blocks, "not_run": NOT_RUN, "all_passed": all(b.get("passed") for b in blocks.values()) and len(blocks) == len(BLOCKS),
        "wall_seconds": round(time.time() - start, 1)}, load)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
