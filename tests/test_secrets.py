"""No secret is stored: `scrub` on its own, in log records, and end to end: a build against a real local server
whose 401 and 500 bodies, HTML pages and answers echo the API key it was sent leaves no trace of the key in the
dataset, the rejects, the cache, the stats, the card or what the CLI prints."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from ascl_data.secrets import REDACTED, contains_secret, register_secret, scrub, scrub_json
from ascl_data.testing.fault_proxy import Answer, ScriptedServer, chat_answer

KEY = "sk-proj-LEAKME-0123456789abcdefXYZ"
ODD_KEY = "Zq9!local-gateway-secret-4242"  # a key of no known shape: only its value can find it


@pytest.mark.parametrize(
    "text",
    [
        f"Incorrect API key provided: {KEY}.",
        "hf_abcdefghijklmnopQRSTUVWX1234 is your token",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789 and github_pat_11ABCDEFG0123456789_abcdefghijk",
        "sk-ant-api03-abcdefghijklmnop",
        "AKIAIOSFODNN7EXAMPLE / aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def",
        "slack said xoxb-1234567890-abcdefghij",
        "header was TOKEN abcdefghijklmnop",
        "proxy sent Baſic abcdefghijklmnop",  # the long s: IGNORECASE takes it for "s", so the scan's gate must too
        "GET https://api.example.com/v1/chat?api_key=abcdef123456&model=m",
        '{"access_token": "abcdefghijklmnop", "model": "m"}',
    ],
)
def test_known_token_shapes_are_redacted(text: str) -> None:
    out = scrub(text)
    assert REDACTED in out and contains_secret(text)
    for secret in ("LEAKME", "abcdefghijklmnopQRST", "abcdefghijklmnopqrstuvwxyz01", "api03-abcdefghijklmnop",
                   "IOSFODNN7", "bPxRfiCY", "eyJhbGciOiJIUzI1NiJ9", "abcdef123456", "abcdefghijklmnop\""):
        assert secret not in out, out


def test_ordinary_text_is_left_alone() -> None:
    for text in ["A task-management framework-overview", "prompt_tokens: 123456, max_tokens=512",
                 "The tokenizer: Qwen/Qwen3-8B", "ask-me-anything-about-the-weather-today", ""]:
        assert scrub(text) == text and not contains_secret(text)


def test_configured_and_environment_secrets_of_any_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scrub(f"gateway said {ODD_KEY}") == f"gateway said {ODD_KEY}"
    assert scrub(f"gateway said {ODD_KEY}", extra_secrets=[ODD_KEY]) == f"gateway said {REDACTED}"
    monkeypatch.setenv("MY_GATEWAY_TOKEN", ODD_KEY)  # named like a secret: its value is one
    assert ODD_KEY not in scrub(f"x {ODD_KEY} y")
    monkeypatch.setenv("MY_GATEWAY_TOKEN", "rotated-" + ODD_KEY)  # the environment is read again when it changes
    assert scrub(f"x rotated-{ODD_KEY} y") == f"x {REDACTED} y"
    monkeypatch.delenv("MY_GATEWAY_TOKEN")
    assert scrub(f"x {ODD_KEY} y") == f"x {ODD_KEY} y"
    register_secret("another-odd-value-777")  # what a backend does with the key it read
    assert scrub("an another-odd-value-777 here") == f"an {REDACTED} here"
    assert scrub_json({"a": [f"k {KEY}", 3, None], "b": {"c": KEY}}) == {
        "a": [f"k {REDACTED}", 3, None], "b": {"c": REDACTED}}


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("log-secret-value-123")  # installs the record factory
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("sending %s with %s", "log-secret-value-123", f"Bearer {KEY}")
    assert "log-secret-value-123" not in caplog.text and KEY not in caplog.text and REDACTED in caplog.text


# --------------------------------------------------------------------------- end to end


def _script(path: str, headers: dict[str, str], body: dict) -> Answer:
    """A hostile teacher: every kind of answer echoes the key it was sent (from its Authorization header)."""
    key = headers.get("authorization", "").removeprefix("Bearer ")
    prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if "five hundred" in prompt:
        return Answer(500, {"error": {"message": f"internal error for key {key}"}})
    if "web page" in prompt:
        return Answer(200, f"<html>session {key}</html>", (("content-type", "text/html"),))
    if "broken call" in prompt:
        return chat_answer(f'<tool_call>{{"name": "retrieve_safety_rules", "arguments": {{"query": "{key}"')
    if "echo" in prompt:
        return chat_answer(f"Sure. By the way, your key is {key}.")
    return chat_answer("Here is a helpful and harmless answer.")


def _recipe(tmp_path: Path, base_url: str, key_env: str) -> Path:
    prompts = ["Say hello.", "Please echo something.", "Show me a web page.", "Answer with five hundred words.",
               "Make a broken call.", "Tell me a joke.", "Another echo please.", "What is 2 plus 2?"]
    with (tmp_path / "prompts.jsonl").open("w") as fh:
        for text in prompts:
            fh.write(json.dumps({"prompt": text, "kind": "benign"}) + "\n")
    recipe = {
        "name": "secrets-test",
        "seed": 1,
        "sources": [{"path": "prompts.jsonl", "license": "cc0-1.0"}],
        "splits": {"sft": 1.0},  # every prompt goes to the teacher (rl rows are prompts only)
        "generators": [{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1}],
        "teacher": {"backend": "openai", "model": "m", "api_key_env": key_env,
                    "settings": {"base_url": base_url, "max_retries": 1, "backoff_initial_s": 0.01, "timeout_s": 10},
                    "sampling": {"temperature": 0.0, "max_tokens": 32, "seed": 0}, "max_in_flight": 4},
        "output": {"dir": "out", "shard_size": 50},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _build(recipe: Path, key_env: str, key: str) -> subprocess.CompletedProcess:
    env = {**os.environ, key_env: key, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "ascl_data", "build", str(recipe), "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)


def _stored_text(folder: Path) -> str:
    """Everything under the folder as text: parquet rows decoded (their pages may be compressed), other files raw."""
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
        else:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.mark.parametrize("key", [KEY, ODD_KEY])
def test_a_build_against_a_server_that_echoes_the_key_stores_no_key(tmp_path: Path, key: str) -> None:
    with ScriptedServer(_script) as server:
        result = _build(_recipe(tmp_path, server.base_url, "ASCL_SECRET_TEST_KEY"), "ASCL_SECRET_TEST_KEY", key)
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(server.chat_requests()) >= 8
    out = tmp_path / "out"
    stats = json.loads((out / "stats" / "stats.json").read_text())
    stored = _stored_text(out)
    assert "internal error for key" in stored and REDACTED in stored  # the 500's body was kept, scrubbed
    assert stats["rows"]["rejects"] >= 3 and stats["rows"]["sft"] + stats["rows"]["rejects"] == 8, stats["rows"]
    assert key not in stored and key not in result.stdout + result.stderr


def test_a_refused_key_stops_the_build_at_once_without_showing_it(tmp_path: Path) -> None:
    refuse = Answer(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    with ScriptedServer(lambda *a: refuse) as server:
        result = _build(_recipe(tmp_path, server.base_url, "ASCL_SECRET_TEST_KEY"), "ASCL_SECRET_TEST_KEY", KEY)
        sent = len(server.chat_requests())
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert server.base_url in result.stderr and "'m'" in result.stderr and "HTTP 401" in result.stderr
    assert KEY not in result.stderr + result.stdout and sent <= 4  # the requests in flight (max_in_flight), then nothing
    rejects = list((tmp_path / "out").rglob("rejects*.parquet"))
    assert not any(pq.read_table(p).num_rows for p in rejects)  # no prompt became a rejection
