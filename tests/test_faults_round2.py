"""The second round of fault cases (issue 24), each as a tester met it: data loss (previews, `--overwrite`, stale
temporary files, chunk markers trusted without their shards), leaks and hangs (credentials in a base URL, absurd
usage, a Hub that never answers), and clear errors instead of tracebacks. Real parts throughout: real builds into
real folders, a scripted OpenAI-compatible server on loopback, a loopback socket that never answers, real parquet.
docs/reliability.md lists each case with the test that covers it."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from ascl_data.backends.base import Completion, SamplingParams
from ascl_data.cli import app
from ascl_data.errors import FatalError, HubError, InputError, load_yaml_model
from ascl_data.pipeline.layout import Layout, atomic_write_bytes, temp_path
from ascl_data.testing.fault_proxy import Answer, ScriptedServer, chat_answer
from helpers import make_recipe

NO_TEACHER = {"splits": {"sft": 0, "rl": 6, "eval": 2}}
ROOT = Path(__file__).resolve().parents[1]


def build(recipe: Path, *args: str):
    return CliRunner().invoke(app, ["build", str(recipe), "--quiet", *args])


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ascl_data", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


def openai_recipe(tmp_path: Path, url: str, prompts: list[str], **overrides) -> Path:
    """A recipe whose every prompt goes to an OpenAI-compatible teacher at `url`."""
    with (tmp_path / "prompts.jsonl").open("w") as fh:
        for text in prompts:
            fh.write(json.dumps({"prompt": text, "kind": "benign"}) + "\n")
    data = {
        "name": "round2", "seed": 1, "sources": [{"path": "prompts.jsonl", "license": "cc0-1.0"}],
        "splits": {"sft": len(prompts), "rl": 0, "eval": 0},
        "generators": [{"name": "adaptive", "max_turns": 2}],
        "teacher": {"backend": "openai", "model": "m",
                    "settings": {"base_url": url, "max_retries": 0, "timeout_s": 30, "max_model_len": 100000},
                    "sampling": {"max_tokens": 64, "temperature": 0.0, "seed": 0}},
        "output": {"dir": "out", "shard_size": 2, "plots": False},
    }
    data.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------- 1. previews


def test_a_preview_goes_under_the_users_cache_and_refuses_a_symlink_or_a_foreign_folder(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ascl_data.pipeline.preview import scratch_dir
    from ascl_data.recipe import load_recipe

    home = tmp_path / "home"
    monkeypatch.setenv("ASCL_DATA_HOME", str(home))
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    assert build(recipe).exit_code == 0
    finished = files_of(tmp_path / "out")
    spec = load_recipe(recipe)
    where = scratch_dir(spec)
    assert where.parent.parent == home and where.name == "tiny-test"
    assert (home / "previews").stat().st_mode & 0o777 == 0o700  # no one else can plant a link in it
    # a symlink where the preview goes, pointed at the finished build: refused, nothing of the build touched
    where.rmdir()
    where.symlink_to(tmp_path / "out")
    result = build(recipe, "--limit", "2")
    assert isinstance(result.exception, InputError) and "symbolic link" in str(result.exception)
    assert files_of(tmp_path / "out") == finished
    where.unlink()
    # the previews folder itself a symlink, or a folder another user owns: refused as well
    (home / "previews").rename(home / "elsewhere")
    (home / "previews").symlink_to(home / "elsewhere")
    with pytest.raises(InputError, match="symbolic link"):
        scratch_dir(spec)
    (home / "previews").unlink()
    (home / "elsewhere").rename(home / "previews")
    where.mkdir()
    os.chown(where, 4242, 4242)
    with pytest.raises(InputError, match="owned by another user"):
        scratch_dir(spec)


# --------------------------------------------------------------------------- 2. --overwrite removes only ours


def test_overwrite_removes_only_the_files_a_build_wrote_and_refuses_a_symlinked_folder_before_removing_any(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    out = tmp_path / "out"
    assert build(recipe).exit_code == 0
    (out / "stats" / "my-analysis.csv").write_text("mine")
    (out / "stats" / "my-plot.png").write_bytes(b"png of mine")
    other = make_recipe(tmp_path, tiny_model_dir, seed=99, **NO_TEACHER)
    assert build(other, "--overwrite").exit_code == 0
    assert (out / "stats" / "my-analysis.csv").read_text() == "mine"
    assert (out / "stats" / "my-plot.png").read_bytes() == b"png of mine"
    assert (out / "stats" / "stats.json").is_file()

    # stats/ replaced by a symlink to the user's folder: refused before anything is removed, no traceback
    elsewhere = tmp_path / "elsewhere"
    (out / "stats").rename(elsewhere)
    (out / "stats").symlink_to(elsewhere)
    before, outside = files_of(out), files_of(elsewhere)
    result = build(recipe, "--overwrite")
    assert isinstance(result.exception, InputError), result.exception
    assert "stats" in str(result.exception) and "symbolic link" in str(result.exception)
    assert files_of(out) == before and files_of(elsewhere) == outside


def test_a_clear_that_fails_half_way_leaves_no_chunk_marker_to_trust(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    assert build(recipe).exit_code == 0
    layout = Layout(tmp_path / "out")
    assert layout.committed(0) is not None
    real_unlink = Path.unlink

    def failing_unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name == "stats.json":
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", failing_unlink)
    with pytest.raises(PermissionError):
        layout.clear()
    monkeypatch.undo()
    assert layout.committed(0) is None and layout.committed(1) is None


# --------------------------------------------------------------------------- 3. stale temporary files


def test_a_resume_removes_only_the_builds_own_temporary_files_in_its_own_folders(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    out = tmp_path / "out"
    assert build(recipe).exit_code == 0
    mine = {"mywork/.thesis.tmp-v2": b"chapter 1", "mywork/.draft.tmp-123": b"draft", ".notes.tmp-7": b"notes",
            "data/.mine.tmp-1": b"mine"}
    for rel, data in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    stale = temp_path(out / "data" / "rl-00000.parquet")  # a killed build's own temporary file
    stale.write_bytes(b"half a shard")
    assert build(recipe).exit_code == 0
    assert {rel: (out / rel).read_bytes() for rel in mine} == mine
    assert not stale.exists()


def test_an_atomic_write_leaves_no_temporary_file_and_its_name_is_the_packages_own(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert ".ascl-tmp-" in temp_path(tmp_path / "a.json").name


# --------------------------------------------------------------------------- 4. chunk markers and their shards


def _rows(out: Path, split: str) -> int:
    return sum(pq.read_metadata(p).num_rows for p in Layout(out).shards(split))


def test_a_missing_or_truncated_shard_of_a_committed_chunk_is_built_again(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    out = tmp_path / "out"
    assert build(recipe).exit_code == 0
    shards = {split: _rows(out, split) for split in ("rl", "eval", "rejects")}
    originals = files_of(out / "data")
    marker = json.loads((out / ".ascl" / "chunks" / "00000.json").read_text())
    first, second = (next((out / "data").glob(f"rl-{i:05d}-of-*.parquet")) for i in (0, 1))  # a finished build's names
    assert marker["shards"]["data/rl-00000.parquet"]["size"] == len(originals[first.name])

    first.unlink()
    half = second
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    result = CliRunner().invoke(app, ["build", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "built again" in result.output and "rl-00000.parquet" in result.output
    assert files_of(out / "data") == originals  # byte-identical to the first build
    assert {split: _rows(out, split) for split in shards} == shards
    stats = json.loads((out / "stats" / "stats.json").read_text())
    assert stats["rows"]["rl"] == shards["rl"]


def test_a_push_of_a_folder_with_a_damaged_shard_says_to_build_again(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    out = tmp_path / "out"
    assert build(recipe).exit_code == 0
    shard = next((out / "data").glob("rl-00000-of-*.parquet"))
    shard.write_bytes(shard.read_bytes()[:100])
    result = CliRunner().invoke(app, ["push", str(out), "my-org/ds", "--dry-run", str(tmp_path / "dry")])
    assert isinstance(result.exception, InputError), result.exception
    assert f"chunk 0: data/{shard.name} is not the file the build wrote" in str(result.exception)
    assert "ascl-data build" in str(result.exception) and not (tmp_path / "dry").exists()
    assert build(recipe).exit_code == 0  # which repairs it
    assert CliRunner().invoke(app, ["push", str(out), "my-org/ds", "--dry-run", str(tmp_path / "dry")]).exit_code == 0


def test_an_unreadable_build_marker_is_a_clear_error_and_overwrite_starts_over(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    out = tmp_path / "out"
    assert build(recipe).exit_code == 0
    (out / ".ascl" / "build.json").write_text("{ not json")
    result = build(recipe)
    assert isinstance(result.exception, InputError)
    assert ".ascl/build.json" in str(result.exception) and "--overwrite" in str(result.exception)
    assert build(recipe, "--overwrite").exit_code == 0
    assert json.loads((out / ".ascl" / "build.json").read_text())["recipe"] == "tiny-test"
    # a garbage chunk marker: the chunk is built again, not a traceback
    (out / ".ascl" / "chunks" / "00001.json").write_text("garbage")
    assert build(recipe).exit_code == 0
    assert _rows(out, "rl") + _rows(out, "eval") == 8


# --------------------------------------------------------------------------- 5. credentials in base_url


def test_a_base_url_with_a_user_or_password_is_refused_at_load_and_never_echoed(tmp_path: Path) -> None:
    from ascl_data.backends.openai_backend import OpenAIBackend
    from ascl_data.secrets import scrub

    url = "http://alice:hunter2-very-secret@127.0.0.1:9/v1"
    recipe = openai_recipe(tmp_path, url, ["hello"])
    result = build(recipe, "--check")
    assert isinstance(result.exception, InputError)
    text = str(result.exception)
    assert "teacher.settings.base_url" in text and "api_key_env" in text
    assert "hunter2" not in text and "alice" not in text
    with pytest.raises(InputError) as err:
        OpenAIBackend(model="m", base_url=url)
    assert "hunter2" not in str(err.value)
    # wherever a URL with credentials could still be echoed (a server's error text), it is redacted
    assert "hunter2" not in scrub(f"could not reach {url}: refused")
    assert "alice" not in scrub(f"could not reach {url}: refused")


# --------------------------------------------------------------------------- 6, 11, 12: what a server answers


PARAMS = SamplingParams(max_tokens=8, temperature=0.0)


def _answer(message: dict, usage: dict | None) -> Answer:
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", **message}}]}
    if usage is not None:
        body["usage"] = usage
    return Answer(200, body)


def _ask(answers: dict[str, Answer], params: SamplingParams = PARAMS) -> dict[str, Completion]:
    from ascl_data.backends.openai_backend import OpenAIBackend

    def script(path: str, headers: dict, body: dict) -> Answer:
        return answers[body["messages"][-1]["content"]]

    with ScriptedServer(script) as server:
        backend = OpenAIBackend(model="m", base_url=server.base_url, max_retries=0, timeout_s=10)
        out = asyncio.run(backend.generate([[{"role": "user", "content": k}] for k in answers], None, params))
    return dict(zip(answers, out))


def test_usage_is_validated_where_it_comes_in(tmp_path: Path) -> None:
    out = _ask({
        "huge": _answer({"content": "hi"}, {"prompt_tokens": 10**30, "completion_tokens": 1}),
        "negative": _answer({"content": "hi"}, {"prompt_tokens": -5, "completion_tokens": 2}),
        "fraction": _answer({"content": "hi"}, {"prompt_tokens": 3.0, "completion_tokens": 2.6}),
        "text": _answer({"content": "hi"}, {"prompt_tokens": "many", "completion_tokens": 2}),
        "none": _answer({"content": "hi"}, None),
    })
    for name in ("huge", "negative", "text"):
        assert out[name].error_reason == "invalid_usage" and "usage" in out[name].error, out[name]
        assert out[name].message is None
    assert (out["fraction"].error, out["fraction"].prompt_tokens, out["fraction"].completion_tokens) == (None, 3, 3)
    assert (out["none"].error, out["none"].prompt_tokens) == (None, 0)


def test_a_cached_answer_with_absurd_usage_is_asked_again_not_a_crash_on_every_rerun(tmp_path: Path) -> None:
    from ascl_data.cache import CachedBackend, RequestCache, request_key

    from helpers import ScriptedBackend

    cache = RequestCache(tmp_path / "c.sqlite")
    teacher = ScriptedBackend(lambda conv, tools: "fresh answer")
    conv = [{"role": "user", "content": "q"}]
    key = request_key(teacher.name, teacher.model, conv, None, PARAMS, {})
    cache.put(key, teacher.name, teacher.model,
              Completion(message={"role": "assistant", "content": "old"}, raw_text="old", prompt_tokens=10**30))
    (done,) = asyncio.run(CachedBackend(teacher, cache).generate([conv], None, PARAMS))
    assert done.message["content"] == "fresh answer" and not done.cached and done.prompt_tokens == 10


def test_an_answer_far_longer_than_max_tokens_is_rejected_with_a_reason() -> None:
    big = "x" * 200_000
    call = {"id": "c1", "type": "function", "function": {"name": "retrieve_safety_rules",
                                                         "arguments": json.dumps({"query": big})}}
    out = _ask({
        "long": _answer({"content": big}, {"prompt_tokens": 1, "completion_tokens": 8}),
        "long args": _answer({"content": None, "tool_calls": [call]}, {"prompt_tokens": 1, "completion_tokens": 8}),
        "fine": _answer({"content": "a short answer"}, {"prompt_tokens": 1, "completion_tokens": 4}),
    })
    for name in ("long", "long args"):
        assert out[name].error_reason == "response_too_long" and "max_tokens 8" in out[name].error
        assert out[name].message is None and big not in (out[name].raw_text or "")
    assert out["fine"].message["content"] == "a short answer"


def test_content_as_a_list_of_text_parts_is_accepted() -> None:
    parts = [{"type": "text", "text": "Paris is "}, {"type": "text", "text": "the capital."}]
    out = _ask({"parts": _answer({"content": parts}, {"prompt_tokens": 1, "completion_tokens": 4}),
                "image": _answer({"content": [{"type": "image_url", "image_url": {"url": "x"}}]}, None)})
    assert out["parts"].error is None and out["parts"].message["content"] == "Paris is the capital."
    assert out["image"].error.startswith("invalid_response")


# --------------------------------------------------------------------------- 7. a Hub that never answers


@pytest.fixture
def silent_hub():
    """A loopback socket that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_hub_that_never_answers_times_out_with_a_clear_message(
        tmp_path: Path, silent_hub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    from ascl_data.publish import check_token, push_folder

    out = tmp_path / "built"
    (out / "data").mkdir(parents=True)
    (out / "README.md").write_text("---\nlicense: cc0-1.0\n---\n# test\n")
    pq.write_table(__import__("pyarrow").table({"messages": ["[]"]}), out / "data" / "sft-00000.parquet")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", silent_hub)
    monkeypatch.setenv("ASCL_HUB_TIMEOUT", "1.5")
    for call in (lambda: push_folder(out, "my-org/ds", token="hf_x" * 8), lambda: check_token("my-org/ds", "t" * 20)):
        started = time.monotonic()
        with pytest.raises(HubError) as err:
            call()
        assert time.monotonic() - started < 30
        assert "did not answer within 1.5 s" in str(err.value) and "ASCL_HUB_TIMEOUT" in str(err.value)


# --------------------------------------------------------------------------- 8. YAML alias bomb


BOMB = """name: bomb
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_yaml_alias_bomb_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    from ascl_data.recipe import Recipe

    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(InputError) as err:
        load_yaml_model(path, Recipe, what="recipe")
    assert time.monotonic() - started < 5
    assert "aliases (*name) expand to more than 100,000 values" in str(err.value) and str(path) in str(err.value)
    path.write_text("name: &n [*n]\n")  # an alias inside its own value
    with pytest.raises(InputError, match="recursive alias"):
        load_yaml_model(path, Recipe, what="recipe")
    # ordinary anchors (a shared block) still load
    path.write_text("name: ok\nsources:\n  - &src {path: p.jsonl}\n  - *src\noutput: {dir: out}\n")
    with pytest.raises(InputError) as err:  # fails for the duplicate source, not for the alias
        load_yaml_model(path, Recipe, what="recipe")
    assert "duplicate source name" in str(err.value) and "expand" not in str(err.value)


# --------------------------------------------------------------------------- 9. tracebacks a user can cause


def test_an_uncached_hub_model_offline_fails_the_check_not_the_build(tmp_path: Path, tiny_model_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    teacher = {"backend": "transformers", "model": "no-such-org/never-downloaded-model"}
    recipe = make_recipe(tmp_path, tiny_model_dir, teacher=teacher)
    result = build(recipe, "--check")
    assert isinstance(result.exception, InputError), result.exception
    assert "teacher.model" in str(result.exception) and "HF_HUB_OFFLINE" in str(result.exception)
    result = CliRunner().invoke(app, ["eval", "--model", "no-such-org/never-downloaded-model", "--suite", "xstest"])
    assert isinstance(result.exception, InputError), result.exception
    assert "--model" in str(result.exception) and "HF_HUB_OFFLINE" in str(result.exception)


def test_a_hub_answering_200_with_an_unexpected_body_is_a_clear_message(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants
    import pyarrow as pa

    from ascl_data.publish import push_folder

    out = tmp_path / "built"
    (out / "data").mkdir(parents=True)
    (out / "README.md").write_text("---\nlicense: cc0-1.0\n---\n# test\n")
    pq.write_table(pa.table({"messages": ["[]"]}), out / "data" / "sft-00000.parquet")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with ScriptedServer(lambda *a: Answer(200, {"hello": "world"})) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.base_url.removesuffix("/v1"))
        with pytest.raises(HubError) as err:
            push_folder(out, "my-org/ds", token="t" * 20)
    assert "cannot create the repository" in str(err.value) and "unexpected answer" in str(err.value)


def test_push_dry_run_onto_an_existing_file_is_a_clear_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    assert build(recipe).exit_code == 0
    target = tmp_path / "a-file.txt"
    target.write_text("mine")
    result = CliRunner().invoke(app, ["push", str(tmp_path / "out"), "my-org/ds", "--dry-run", str(target)])
    assert isinstance(result.exception, InputError) and "is a file" in str(result.exception)
    assert target.read_text() == "mine"


def test_a_fatal_teacher_error_prints_one_message_and_no_asyncio_traceback(tmp_path: Path) -> None:
    answered = iter(range(10**6))

    def script(*a) -> Answer:  # a few answers, then the key is refused while later chunks are running
        if next(answered) < 3:
            return chat_answer("a fine answer")
        time.sleep(0.2)
        return Answer(401, {"error": {"message": "bad key"}})

    with ScriptedServer(script) as server:
        recipe = openai_recipe(tmp_path, server.base_url, [f"question {i}" for i in range(40)])
        data = yaml.safe_load(recipe.read_text())
        data["output"]["shard_size"] = 1
        data["teacher"]["settings"]["max_concurrency"] = 8
        recipe.write_text(yaml.safe_dump(data))
        result = run_cli("build", "recipe.yaml", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "refused a request" in result.stderr
    assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr


# --------------------------------------------------------------------------- 10. small traps


def test_a_prompt_of_invisible_characters_only_is_rejected_as_empty(tmp_path: Path, tiny_model_dir: Path) -> None:
    from ascl_data.schemas import PromptMessage

    for blank in ("\u200b", "\u00a0\u200b\ufeff", "\u2060 \u200d", "\ufeff"):
        with pytest.raises(ValueError, match="must not be empty"):
            PromptMessage(role="user", content=blank)
    prompts = [("benign", None, "\u200b\u00a0\ufeff", None), ("benign", None, "A real prompt.", None)]
    recipe = make_recipe(tmp_path, tiny_model_dir, prompts=prompts, splits={"sft": 0, "rl": 5, "eval": 0})
    result = build(recipe)  # a local file is checked strictly: the row is named, nothing is built
    assert isinstance(result.exception, InputError) and "empty prompt" in str(result.exception)
    assert "prompts.jsonl:1" in str(result.exception)


def test_output_dir_with_a_tilde_is_the_home_folder(tmp_path: Path, tiny_model_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ascl_data.recipe import load_recipe

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    recipe = make_recipe(tmp_path, tiny_model_dir, output={"dir": "~/datasets/x"})
    assert load_recipe(recipe).output.dir == str(tmp_path / "home" / "datasets" / "x")


def test_a_symlink_inside_the_build_folder_is_never_uploaded(tmp_path: Path, tiny_model_dir: Path) -> None:
    from ascl_data.publish import upload_set

    recipe = make_recipe(tmp_path, tiny_model_dir, **NO_TEACHER)
    assert build(recipe).exit_code == 0
    out = tmp_path / "out"
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "id_rsa").write_text("PRIVATE")
    (out / "notes.txt").symlink_to(tmp_path / "secret" / "id_rsa")
    (out / "linked").symlink_to(tmp_path / "secret")
    (out / "mine.txt").write_text("a real file of the user's")
    upload = upload_set(out, "my-org/ds")
    assert "mine.txt" in upload
    assert not any(rel.startswith(("notes", "linked")) for rel in upload), sorted(upload)


def test_ctrl_c_leaves_the_terminal_cursor_visible(tmp_path: Path) -> None:
    def slow(*a) -> Answer:
        time.sleep(3)
        return chat_answer("a slow answer")

    with ScriptedServer(slow) as server:
        openai_recipe(tmp_path, server.base_url, [f"question {i}" for i in range(40)])
        pid, fd = pty.fork()
        if pid == 0:  # the child: a build on a terminal
            os.chdir(tmp_path)
            os.environ.update({"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TERM": "xterm"})
            os.execv(sys.executable, [sys.executable, "-m", "ascl_data", "build", "recipe.yaml"])
        seen = b""
        deadline = time.monotonic() + 120
        while b"building" not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                seen += os.read(fd, 65536)
        assert b"building" in seen, seen.decode(errors="replace")
        os.kill(pid, signal.SIGINT)
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130
    assert b"stopped" in seen
    assert seen.rfind(b"\x1b[?25h") > seen.rfind(b"\x1b[?25l"), "the cursor was left hidden"


@pytest.mark.parametrize("role", ["judge", "model", "rater"])
def test_a_refused_key_is_attributed_to_the_server_that_refused_it(role: str) -> None:
    from ascl_data.backends import make_backend

    with ScriptedServer(lambda *a: Answer(401, {"error": {"message": "bad key"}})) as server:
        backend = make_backend("openai", role=role, model="m", base_url=server.base_url, max_retries=0)
        with pytest.raises(FatalError) as err:
            asyncio.run(backend.generate([[{"role": "user", "content": "x"}]], None, PARAMS))
    text = str(err.value)
    assert "teacher" not in text and "the build stops" not in text
    assert {"judge": "judge server", "model": "evaluated model", "rater": "rater server"}[role] in text
    if role == "rater":  # where to name the key's variable: the rater's own field
        assert "set quality.rater.api_key_env" in text


# --------------------------------------------------------------------------- 13. eval with nothing scored


def test_eval_with_no_scored_item_in_a_benchmark_exits_non_zero(tmp_path: Path) -> None:
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {i}"}) + "\n" for i in range(3)))
    with ScriptedServer(lambda *a: Answer(500, {"error": {"message": "down"}})) as server:
        result = CliRunner().invoke(app, [
            "eval", "--model", "m", "--backend", "openai", "--backend-setting", f"base_url={server.base_url}",
            "--backend-setting", "max_retries=0", "--backend-setting", "max_model_len=100000",
            "--custom", str(data), "--kind", "benign", "--mode", "none", "--out", str(tmp_path / "res")])
    assert result.exit_code == 1, result.output
    assert "no scored answer" in result.output and "mine" in result.output
    assert (tmp_path / "res" / "results.json").is_file()  # the records are kept to look at
