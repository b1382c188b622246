"""HTTP errors during `push` against a real local HTTP server standing in for the Hub: each is one clear message
(which step, the status, what to do) with exit 2, no traceback and no token. The token check a pushing build
makes before its first teacher call fails the same way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ascl_data.errors import HubError
from ascl_data.publish import check_token, push_folder
from ascl_data.testing.fault_proxy import Answer, ScriptedServer
from ascl_data.testing.vllm_server import free_port

TOKEN = "hf_PUSHTOKEN0123456789abcdefXYZ"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The smallest folder `push` accepts: a card and one shard."""
    out = tmp_path / "built"
    (out / "data").mkdir(parents=True)
    (out / "README.md").write_text("---\nlicense: cc0-1.0\n---\n# test\n")
    pq.write_table(pa.table({"messages": ["[]"]}), out / "data" / "sft-00000.parquet")
    return out


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def at(endpoint: str) -> None:
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)

    return at


@pytest.mark.parametrize(
    ("status", "expect"),
    [(401, "hf auth login"), (403, "write access"), (500, "push again later"), (429, "rate-limiting")],
)
def test_a_refused_push_says_which_step_and_what_to_do(folder: Path, online, status: int, expect: str) -> None:
    echo = Answer(status, {"error": f"Invalid credentials in Authorization header (Bearer {TOKEN})"})
    with ScriptedServer(lambda *a: echo) as hub:
        online(hub.base_url.removesuffix("/v1"))
        with pytest.raises(HubError) as err:
            push_folder(folder, "my-org/ds", token=TOKEN)
    text = str(err.value)
    assert text.startswith("push to my-org/ds: cannot create the repository: HTTP") and str(status) in text
    assert expect in text and TOKEN not in text


def test_an_unreachable_hub_is_one_clear_message(folder: Path, online) -> None:
    online(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(HubError, match="the Hub cannot be reached"):
        push_folder(folder, "my-org/ds", token=TOKEN)


def test_offline_mode_says_how_to_push(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        push_folder(folder, "my-org/ds", token=TOKEN)


def test_the_cli_prints_it_without_a_traceback(folder: Path) -> None:
    with ScriptedServer(lambda *a: Answer(401, {"error": "Invalid credentials"})) as hub:
        env = {"HF_ENDPOINT": hub.base_url.removesuffix("/v1"), "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN,
               "PATH": "/usr/bin:/bin", "HOME": str(folder.parent)}
        result = subprocess.run([sys.executable, "-m", "ascl_data", "push", str(folder), "my-org/ds"], env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "HTTP 401" in result.stderr and TOKEN not in result.stderr


def test_the_token_check_says_the_hub_cannot_be_reached(online) -> None:
    online(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(HubError, match="cannot check the token before the build: the Hub cannot be reached"):
        check_token("my-org/ds", token=TOKEN)


def test_a_pushing_build_offline_stops_before_the_build_with_one_message(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "Write a haiku about rain.", "kind": "benign"}\n')
    (tmp_path / "recipe.yaml").write_text("name: t\nsources:\n  - path: prompts.jsonl\noutput:\n  dir: out\n")
    env = {"HF_HUB_OFFLINE": "1", "HF_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ascl_data", "build", "recipe.yaml", "--push-to-hub", "my-org/ds"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stderr and "Traceback" not in result.stderr
    assert TOKEN not in result.stderr and not (tmp_path / "out").exists()  # the build never started
