"""The fault matrix: real `ascl-data build` runs (the CLI, in a subprocess) against a scripted hostile teacher server
on loopback and a damaged request cache, counting what the reliability section of the README promises:

- per-prompt faults (500/429 answers, HTML or garbled completions, broken tool calls, answers and error bodies that
  echo the API key, a body sent one byte a second, prompts too long for the context): the build exits 0 and every
  prompt ends as an accepted trace or a rejection with its reason;
- faults no retry can fix (401, 403, 404): the build stops at once with exit 2, and a rerun against a healthy
  server resumes and accounts for every prompt;
- cache faults (a corrupt page, a garbage or truncated file, a full disk on a real tmpfs where one can be mounted):
  the build stops with exit 2 naming the cache file; after the advised fix, a rerun accounts for every prompt;
- the key: searched for in every stored file (parquet rows decoded), the cache and the CLI's output.

A clean build of the same prompts is the baseline (its time beside the faulty runs'). Results go to
benchmarks/results/fault_matrix.json.

Usage: .venv/bin/python benchmarks/fault_matrix.py [--prompts-per-fault 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from ascl_data.testing.fault_proxy import Answer, ScriptedServer, chat_answer
from provenance import write_results

KEY = "sk-proj-FAULTMATRIX-0123456789abcdef"
KEY_ENV = "ASCL_FAULT_MATRIX_KEY"
RESULTS = Path(__file__).parent / "results" / "fault_matrix.json"

# per-prompt faults: the marker in a prompt picks the server's answer to it
PER_PROMPT: dict[str, Any] = {
    "server_500_echoing_key": lambda key: Answer(500, {"error": {"message": f"backend crashed for key {key}"}}),
    "rate_limited_429": lambda key: Answer(429, {"error": {"message": "slow down"}}, (("retry-after", "0"),)),
    "html_page_echoing_key": lambda key: Answer(200, f"<html>session {key}</html>", (("content-type", "text/html"),)),
    "garbled_completion": lambda key: Answer(200, json.dumps({"choices": [{"message": "hi"}]})),
    "no_choices": lambda key: Answer(200, {"id": "x", "choices": []}),
    "broken_tool_call_echoing_key": lambda key: chat_answer(f'<tool_call>{{"name": "x", "arguments": "{key}'),
    "answer_echoing_key": lambda key: chat_answer(f"Here you go. Your key is {key}, Bearer {key}."),
    "trickle_1_byte_per_s": lambda key: Answer(200, chat_answer("slow").payload(), trickle_s=1.0),
    "prompt_too_long": None,  # never reaches the server
}
FATAL = {401: "unauthorized", 403: "forbidden", 404: "unknown model"}
CACHE_FAULTS = ["corrupt_page", "garbage_file", "truncated_file", "disk_full"]


class Teacher:
    """The scripted server's behaviour, switchable between runs."""

    def __init__(self) -> None:
        self.fatal: int | None = None

    def __call__(self, path: str, headers: dict[str, str], body: dict) -> Answer:
        key = headers.get("authorization", "").removeprefix("Bearer ")
        if self.fatal is not None:
            return Answer(self.fatal, {"error": {"message": f"refused key {key}"}})
        prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        for marker, make in PER_PROMPT.items():
            if marker in prompt and make is not None:
                return make(key)
        return chat_answer("A helpful, harmless answer" + " with some detail" * 30 + ".")


def write_prompts(folder: Path, per_fault: int, faults: bool) -> int:
    rows = [f"Plain question number {i}?" for i in range(per_fault * 3)]
    if faults:
        for marker in PER_PROMPT:
            for i in range(per_fault):
                text = f"Question {i} about {marker}?"
                rows.append(text + " pad" * 20_000 if marker == "prompt_too_long" else text)
    with (folder / "prompts.jsonl").open("w") as fh:
        for text in rows:
            fh.write(json.dumps({"prompt": text, "kind": "benign"}) + "\n")
    return len(rows)


def write_recipe(folder: Path, base_url: str, cache_dir: Path) -> Path:
    recipe = {
        "name": "fault-matrix",
        "seed": 1,
        "sources": [{"path": "prompts.jsonl", "license": "cc0-1.0"}],
        "splits": {"sft": 1.0},
        "generators": [{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1}],
        "teacher": {
            "backend": "openai", "model": "m", "api_key_env": KEY_ENV, "cache_dir": str(cache_dir),
            "settings": {"base_url": base_url, "max_retries": 1, "backoff_initial_s": 0.05, "timeout_s": 2,
                         "max_model_len": 8192},
            "sampling": {"temperature": 0.0, "max_tokens": 64, "seed": 0}, "batch_size": 16,
        },
        "output": {"dir": "out", "shard_size": 100},
    }  # fmt: skip
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def build(recipe: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, KEY_ENV: KEY, "HF_HUB_OFFLINE": "1", "COLUMNS": "500"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "ascl_data", "build", str(recipe), "--quiet"], env=env,
                            capture_output=True, text=True, timeout=900)
    return result, time.perf_counter() - started


def accounted(out: Path) -> dict[str, int]:
    rows = json.loads((out / "stats" / "stats.json").read_text())["rows"]
    return {"accepted": rows.get("sft", 0), "rejected": rows.get("rejects", 0)}


def reasons(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in out.rglob("*.parquet"):
        table = pq.read_table(path)
        if "reason" in table.column_names:
            for reason in table.column("reason").to_pylist():
                counts[reason] = counts.get(reason, 0) + 1
    return counts


def key_hits(folder: Path, *texts: str) -> int:
    """Occurrences of the key in every file under `folder` (parquet rows decoded) and in the given texts."""
    hits = sum(t.count(KEY) for t in texts)
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            hits += json.dumps(pq.read_table(path).to_pylist(), default=str).count(KEY)
        else:
            hits += path.read_bytes().count(KEY.encode())
    return hits


def damage(cache_file: Path, how: str) -> None:
    data = cache_file.read_bytes()
    if how == "corrupt_page":
        cache_file.write_bytes(data[: 4096 * 2] + os.urandom(4096) + data[4096 * 3 :])
    elif how == "garbage_file":
        cache_file.write_bytes(os.urandom(len(data)))
    elif how == "truncated_file":
        cache_file.write_bytes(data[: len(data) // 3])


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts-per-fault", type=int, default=6)
    args = parser.parse_args()
    n = args.prompts_per_fault
    teacher = Teacher()
    runs: list[dict[str, Any]] = []
    with ScriptedServer(teacher) as server, tempfile.TemporaryDirectory(prefix="fault-matrix-") as tmp:
        root = Path(tmp)

        def fresh(name: str, faults: bool, cache_dir: Path | None = None) -> tuple[Path, Path, int]:
            folder = root / name
            folder.mkdir()
            prompts = write_prompts(folder, n, faults)
            cache = cache_dir or folder / "cache"
            return write_recipe(folder, server.base_url, cache), cache / "requests.sqlite", prompts

        def record(name: str, kind: str, faults: int, prompts: int, recipe: Path, results: list) -> None:
            out = recipe.parent / "out"
            final, seconds = results[-1]
            got = accounted(out) if final.returncode == 0 else {"accepted": 0, "rejected": 0}
            runs.append({
                "fault": name, "class": kind, "faults_injected": faults, "prompts": prompts,
                "exit_codes": [r.returncode for r, _ in results],
                "first_run_stopped_with_message": results[0][0].returncode == 2 and "Traceback" not in results[0][0].stderr,
                **got, "lost": prompts - got["accepted"] - got["rejected"],
                "rejection_reasons": reasons(out) if out.exists() else {},
                "secrets_found": key_hits(recipe.parent, *(r.stdout + r.stderr for r, _ in results)),
                "seconds": round(sum(s for _, s in results), 1),
                "first_run_message": results[0][0].stderr.strip()[-400:] if results[0][0].returncode else "",
            })  # fmt: skip
            print(json.dumps(runs[-1])[:300], flush=True)

        # baseline: a clean build of the plain prompts
        recipe, _, prompts = fresh("clean", faults=False)
        record("none (baseline)", "baseline", 0, prompts, recipe, [build(recipe)])

        # every per-prompt fault in one build
        recipe, _, prompts = fresh("per-prompt", faults=True)
        before = len(server.requests)
        result = build(recipe)
        injected = sum(1 for _, b in server.requests[before:] if any(
            m in json.dumps(b.get("messages", [])[-1:]) for m in PER_PROMPT)) + n  # + the too-long, never sent
        record("per-prompt server faults", "per_prompt", injected, prompts, recipe, [result])

        # faults no retry can fix: stop at once, then resume against a healthy server
        for status, what in FATAL.items():
            recipe, _, prompts = fresh(f"fatal-{status}", faults=False)
            teacher.fatal = status
            first = build(recipe)
            teacher.fatal = None
            record(f"HTTP {status} ({what})", "fatal", 1, prompts, recipe, [first, build(recipe)])

        # cache faults: fill the cache, damage it, build again (must stop naming it), recover as advised
        for how in CACHE_FAULTS:
            if how == "disk_full":
                mount = root / "tiny-disk"
                if not mount_tmpfs(mount, "256k"):
                    runs.append({"fault": "cache: disk_full", "class": "cache", "skipped": "cannot mount a tmpfs"})
                    continue
                try:
                    recipe, cache_file, prompts = fresh("cache-disk_full", faults=False, cache_dir=mount / "cache")
                    filler = mount / "filler"
                    filler.write_bytes(b"\0" * (256 - 24) * 1024)  # 24 KB left: less than the cache needs
                    first = build(recipe)
                    filler.unlink()  # "free space on the disk"
                    record("cache: disk_full", "cache", 1, prompts, recipe, [first, build(recipe)])
                finally:
                    subprocess.run(["umount", "--lazy", str(mount)], check=False)
                continue
            recipe, cache_file, prompts = fresh(f"cache-{how}", faults=False)
            filled, _ = build(recipe)
            assert filled.returncode == 0, filled.stderr[-2000:]
            shutil.rmtree(recipe.parent / "out")
            damage(cache_file, how)
            first = build(recipe)
            cache_file.unlink()  # the advice: delete it to start the cache over
            record(f"cache: {how}", "cache", 1, prompts, recipe, [first, build(recipe)])

    faulty = [r for r in runs if r["class"] != "baseline" and "skipped" not in r]
    summary = {
        "fault_classes": len(PER_PROMPT) + len(FATAL) + len(CACHE_FAULTS),
        "faults_injected": sum(r["faults_injected"] for r in faulty),
        "prompts": sum(r["prompts"] for r in faulty),
        "prompts_lost": sum(r["lost"] for r in faulty),
        "secrets_found_in_outputs": sum(r["secrets_found"] for r in runs if "skipped" not in r),
        "fatal_and_cache_faults_stopped_with_message": sum(
            r["first_run_stopped_with_message"] for r in faulty if r["class"] in ("fatal", "cache")),
        "fatal_and_cache_faults": sum(1 for r in faulty if r["class"] in ("fatal", "cache")),
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, {"summary": summary, "runs": runs})
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
