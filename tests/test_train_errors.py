"""`ascl-data train` with a model or dataset that is neither a local path nor loadable from the Hub: one message that
names the config file, the field and why (offline, not found, unreachable), exit 2 and no traceback. The Hub is a real
loopback HTTP server answering as the Hub does for a missing repository, or a closed port; each case runs the real
command line in a subprocess, because the Hub endpoint and offline mode are read when huggingface_hub is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from ascl_data.testing.vllm_server import free_port


class MissingRepoHub(BaseHTTPRequestHandler):
    """Every request gets the Hub's answer for a repository that does not exist (404, X-Error-Code: RepoNotFound)."""

    def log_message(self, *args: object) -> None:
        pass

    def _missing(self) -> None:
        body = b'{"error": "Repository not found"}'
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _missing


@pytest.fixture(scope="module")
def missing_repo_hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MissingRepoHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path, missing_repo_hub: str) -> dict:
    """The four commands, started at once (each spends seconds importing torch and TRL; the unreachable Hub costs
    huggingface_hub's retries, about 25 s)."""
    model = str(embedded_model_dir)
    data = tmp_path_factory.mktemp("data") / "d.parquet"
    pq.write_table(pa.table({"messages": [[{"role": "user", "content": "hi"}]], "tools": ["[]"]}), data)
    offline = {"HF_HUB_OFFLINE": "1"}
    cases = {
        # the README's SFT command before the command that makes its data
        "dataset offline": (offline, {"model_name_or_path": model, "dataset_name": "runs/data"}),
        # the dataset loads; the model (the SFT output the IFPO config expects) does not exist
        "model offline": (offline, {"model_name_or_path": "runs/sft-smollm2", "dataset_name": str(data)}),
        "not on the Hub": (
            {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": missing_repo_hub},
            {"model_name_or_path": model, "dataset_name": "my-org/no-such-data"},
        ),
        "unreachable": (  # nothing listens on that port
            {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
            {"model_name_or_path": model, "dataset_name": "my-org/data"},
        ),
    }
    return {name: train(tmp_path_factory.mktemp("run"), env, fields) for name, (env, fields) in cases.items()}


def train(folder: Path, env: dict[str, str], fields: dict[str, str]) -> subprocess.Popen:
    config = folder / "sft.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(folder / "out"), "report_to": "none", "bf16": False, **fields}))
    return subprocess.Popen(
        [sys.executable, "-m", "ascl_data", "train", "sft", str(config)],
        env={**os.environ, "COLUMNS": "500", "HF_HUB_DISABLE_PROGRESS_BARS": "1", **env}, cwd=folder,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def the_error(proc: subprocess.Popen, field: str, value: str) -> str:
    """The one error line, after checking the exit status and that no traceback was printed."""
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    (line,) = [line for line in stderr.splitlines() if f"{field}: '{value}' is not a local folder or file" in line]
    return line


def test_a_dataset_folder_not_made_yet_offline(runs: dict):
    line = the_error(runs["dataset offline"], "dataset_name", "runs/data")
    assert "HF_HUB_OFFLINE is set" in line and "python -m ascl_data.rl.toy" in line


def test_a_model_not_trained_yet_offline(runs: dict):
    line = the_error(runs["model offline"], "model_name_or_path", "runs/sft-smollm2")
    assert "HF_HUB_OFFLINE is set" in line and "ascl-data train sft" in line


def test_a_dataset_the_hub_does_not_have(runs: dict):
    assert "no such repository on the Hub" in the_error(runs["not on the Hub"], "dataset_name", "my-org/no-such-data")


def test_an_unreachable_hub(runs: dict):
    assert "the Hub cannot be reached" in the_error(runs["unreachable"], "dataset_name", "my-org/data")
