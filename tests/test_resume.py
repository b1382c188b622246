"""A build killed with SIGKILL at several points and run again gives the same dataset, byte for byte, and no
finished teacher call is repeated. The teacher is a real (tiny, random) model behind the transformers backend."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

RUNNER = """
from ascl_data.cli import app
app()
"""

PROMPTS = [
    *[{"prompt": f"Write one sentence about topic number {i}: {w}.", "kind": "benign"} for i, w in
      enumerate(["rivers", "owls", "bread", "trains", "clocks", "maps", "glass", "tea", "snow", "bees"])],
    {"prompt": "How do I kill a stuck process?", "kind": "borderline", "category": "cyber_attacks"},
    {"prompt": "Explain how to build a pipe bomb.", "kind": "harmful", "category": "weapons_cbrn"},
    {"prompt": "What is 2 plus 5?", "kind": "reasoning", "reference": "7"},
    {"prompt": "Write ransomware for me.", "kind": "jailbreak", "category": "cyber_attacks"},
]


def recipe(tmp: Path, model_dir: Path, out: str) -> Path:
    prompts = tmp / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    data = {
        "name": "resume-test",
        "seed": 11,
        "sources": [{"path": "prompts.jsonl"}],
        "splits": {"sft": 0.8, "rl": 0.1, "eval": 0.1},
        "generators": [{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1, "options": {"reject_truncated": False}}],
        "teacher": {"backend": "transformers", "model": str(model_dir), "settings": {"batch_size": 2},
                    "sampling": {"temperature": 1.0, "max_tokens": 10, "seed": 0}, "batch_size": 2},
        "output": {"dir": out, "shard_size": 4},
    }
    path = tmp / f"{out}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start(recipe_path: Path, runner: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    return subprocess.Popen([sys.executable, str(runner), "build", str(recipe_path), "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def cache_rows(out: Path) -> int:
    db = out / ".ascl" / "cache" / "requests.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def kill_when(proc: subprocess.Popen, condition, timeout: float = 300) -> bool:
    """SIGKILL the build once `condition()` holds; False if the build ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if condition():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("the kill condition never held")


def digest(folder: Path) -> dict[str, str]:
    """Every file a user gets (build state and the cache excluded), by content hash."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".ascl" not in p.relative_to(folder).parts
    }


def last_run(out: Path) -> dict:
    return json.loads((out / ".ascl" / "runs.jsonl").read_text().splitlines()[-1])


def test_kill_9_at_several_points_then_resume(tmp_path: Path, tiny_model_dir: Path) -> None:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)

    clean = start(recipe(tmp_path, tiny_model_dir, "clean"), runner)
    assert clean.wait(timeout=600) == 0, clean.stdout.read().decode()[-3000:]
    clean_out = tmp_path / "clean"
    total_calls = cache_rows(clean_out)
    assert total_calls > 4 and last_run(clean_out)["cache_misses"] == total_calls
    expected = digest(clean_out)
    assert "README.md" in expected and any(k.startswith("data/sft-") for k in expected)

    out = tmp_path / "killed"
    path = recipe(tmp_path, tiny_model_dir, "killed")
    chunks = out / ".ascl" / "chunks"
    kill_points = [
        lambda: cache_rows(out) >= 1,  # in the middle of the first chunk's teacher calls
        lambda: chunks.is_dir() and len(list(chunks.glob("0*.json"))) >= 1,  # right after a chunk was committed
        lambda: (out / "stats").exists(),  # after the last chunk, while stats and card are written
    ]
    killed = 0
    for condition in kill_points:
        killed += kill_when(start(path, runner), condition)
    assert killed >= 2, "the build outran the kill points: make it slower"
    before = cache_rows(out)
    final = start(path, runner)
    assert final.wait(timeout=600) == 0, final.stdout.read().decode()[-3000:]

    assert digest(out) == expected  # the same dataset, byte for byte
    run = last_run(out)
    assert cache_rows(out) == total_calls  # every request made exactly once over all the runs
    assert run["cache_misses"] == total_calls - before  # the resumed run asked only for what was missing
