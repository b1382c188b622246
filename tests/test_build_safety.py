"""A build never harms the user's files and fails clearly on a bad folder or input: `--overwrite` only clears a
folder the package made (its marker proves it), a second build into a running build's folder is refused, a source
changed under a build is caught, short sources are warned about, and a bad output folder, a full disk, non-UTF-8
input or a bad teacher setting is one clear error. Builds here have no `sft` prompts (no teacher call) unless a
test needs one."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ascl_data.pipeline.check import check_recipe
from ascl_data.pipeline.layout import Layout, atomic_write_bytes
from ascl_data.cli import app
from ascl_data.errors import FatalError, InputError
from helpers import make_recipe

NO_TEACHER = {"splits": {"sft": 0, "rl": 6, "eval": 2}}


def build(recipe: Path, *args: str):
    return CliRunner().invoke(app, ["build", str(recipe), "--quiet", *args])


def _user_folder(root: Path) -> dict[str, bytes]:
    (root / "data").mkdir(parents=True)
    (root / "stats").mkdir()
    files = {"README.md": b"# my notes\n", "data/prompts.jsonl": b'{"prompt": "mine"}\n', "stats/x.csv": b"1,2\n"}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    return files


def test_overwrite_never_touches_a_folder_the_package_did_not_make(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    mine = tmp_path / "mine"
    files = _user_folder(mine)
    for args in ([], ["--overwrite"]):
        result = build(recipe, "-o", str(mine), *args)
        text = str(result.exception)
        assert result.exit_code != 0 and str(mine) in text and "was not made by `ascl-data build`" in text
        assert "--overwrite" not in text  # never suggested for a foreign folder
    assert {rel: (mine / rel).read_bytes() for rel in files} == files
    assert sorted(p.name for p in mine.iterdir()) == ["README.md", "data", "stats"]  # nothing added either


def test_overwrite_of_our_own_build_keeps_files_the_user_added(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    assert build(recipe).exit_code == 0
    note = tmp_path / "out" / "data" / "my-notes.txt"
    note.write_text("keep me")
    other = make_recipe(tmp_path, tiny_model_dir, seed=99, **NO_TEACHER)
    assert build(other, "--overwrite").exit_code == 0
    assert note.read_text() == "keep me"


def test_a_second_build_into_a_running_builds_folder_is_refused_and_a_dead_ones_lock_taken_over(tmp_path: Path) -> None:
    root = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from ascl_data.pipeline.layout import Layout; "
         "Layout(Path(sys.argv[1])).claim('abc', {}, overwrite=False); print('held', flush=True); time.sleep(120)",
         str(root)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError) as err:
            Layout(root).claim("abc", {}, overwrite=False)
        assert f"another build (pid {holder.pid})" in str(err.value) and str(root) in str(err.value)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock
        holder.wait()
    layout = Layout(root)
    layout.claim("abc", {}, overwrite=False)  # taken over
    assert layout.lock_file.read_text().strip() == str(os.getpid())
    layout.release()


def test_a_source_changed_under_a_build_is_a_clear_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    assert build(recipe).exit_code == 0
    with (tmp_path / "prompts.jsonl").open("a") as fh:
        fh.write(json.dumps({"prompt": "A new prompt added later.", "kind": "benign"}) + "\n")
    result = build(recipe)
    text = str(result.exception)
    assert result.exit_code != 0 and "prompts.jsonl" in text and "content changed" in text and "--overwrite" in text
    assert build(recipe, "--overwrite").exit_code == 0


def test_empty_or_short_sources_are_warned_about(tmp_path: Path, tiny_model_dir: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, splits={"sft": 0, "rl": 50, "eval": 10})
    (tmp_path / "empty.jsonl").write_text("")
    data = yaml.safe_load(recipe.read_text())
    data["sources"].append({"path": "empty.jsonl", "license": "cc0-1.0"})
    recipe.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.WARNING, logger="ascl_data.sources"):
        assert build(recipe).exit_code == 0
    assert "empty.jsonl) has no rows" in caplog.text
    assert "fewer than the 60 prompts the splits ask for" in caplog.text


@contextlib.contextmanager
def _mounted(path: Path, options: str) -> Iterator[bool]:
    path.mkdir(parents=True, exist_ok=True)
    ok = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                                              capture_output=True).returncode == 0
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "--lazy", str(path)], check=True)


def test_an_output_folder_that_is_a_file_below_a_file_or_read_only_is_one_clear_error(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    (tmp_path / "a-file").write_text("x")
    cases = {tmp_path / "a-file": "is a file, not a folder", tmp_path / "a-file" / "out": "a-file is a file"}
    with _mounted(tmp_path / "ro", "ro,size=64k") as mounted:
        if not mounted:  # not root: a folder without write permission
            (tmp_path / "ro").chmod(0o500)
        cases[tmp_path / "ro" / "out"] = "read-only file system" if mounted else "permission denied"
        for out, expect in cases.items():
            result = build(recipe, "-o", str(out))
            assert result.exit_code != 0 and isinstance(result.exception, InputError), result.output
            assert str(out) in str(result.exception) and expect in str(result.exception)


def test_a_full_disk_while_writing_a_shard_says_so(tmp_path: Path) -> None:
    with _mounted(tmp_path / "tiny", "size=64k") as mounted:
        if not mounted:
            pytest.skip("needs a tmpfs (root) to fill a real disk")
        with pytest.raises(FatalError, match="the disk is full: cannot write .*sft-00000.parquet.*resumes"):
            atomic_write_bytes(tmp_path / "tiny" / "data" / "sft-00000.parquet", os.urandom(200_000))
        assert not list((tmp_path / "tiny" / "data").iterdir())  # no half-written file left


def test_non_utf8_source_or_recipe_names_the_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    good = (tmp_path / "prompts.jsonl").read_bytes()
    (tmp_path / "prompts.jsonl").write_bytes(good + b'{"prompt": "caf\xe9", "kind": "benign"}\n')
    result = build(recipe)
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert "not UTF-8 text: byte 0xe9" in str(result.exception) and "prompts.jsonl:" in str(result.exception)
    recipe.write_bytes(recipe.read_bytes().replace(b"tiny-test", b"tiny-t\xe9st"))
    with pytest.raises(InputError, match=r"recipe.yaml:1: not UTF-8 text: byte 0xe9"):
        check_recipe(recipe)


def test_check_catches_a_missing_model_path_and_an_unknown_teacher_setting(tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path, tmp_path / "no-model-here")
    data = yaml.safe_load(recipe.read_text())
    data["teacher"]["settings"]["batch_sise"] = 4
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["build", str(recipe), "--check"])
    text = str(result.exception)
    assert result.exit_code != 0 and "teacher.model" in text and "no-model-here" in text
    assert "teacher.settings.batch_sise" in text and "no setting 'batch_sise'" in text
    data["teacher"] = {"backend": "openai", "model": "m", "settings": {"base_url": "localhost:8000", "retries": 3}}
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    text = str(CliRunner().invoke(app, ["build", str(recipe), "--check"]).exception)
    assert "teacher.settings.base_urls" in text and "teacher.settings.retries" in text


def test_temporary_files_of_a_killed_build_are_removed_on_resume(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    assert build(recipe).exit_code == 0
    stale = tmp_path / "out" / "stats" / ".stats.json.tmp-999999"  # what a SIGKILL mid-write leaves
    stale.write_text("{")
    assert build(recipe).exit_code == 0
    assert not stale.exists()
