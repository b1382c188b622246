"""Real parts for tests and benchmarks: a vLLM OpenAI-compatible server on loopback (`vllm_server`) and a
fault-injecting HTTP proxy in front of it (`fault_proxy`). The test suite shares one server per session
(`tests/conftest.py`, fixture `vllm_server`).
"""

from __future__ import annotations

from ascl_data.testing.fault_proxy import FaultConfig, FaultProxy
from ascl_data.testing.vllm_server import VLLMServer, ServerError, unavailable_reason

__all__ = ["FaultConfig", "FaultProxy", "ServerError", "VLLMServer", "unavailable_reason"]
