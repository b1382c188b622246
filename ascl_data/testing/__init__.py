"""Real parts for tests and benchmarks: a vLLM OpenAI-compatible server on loopback (`vllm_server`) and a
fault-injecting HTTP proxy in front of it (`fault_proxy`).

`shared_server()` starts one server per process and reuses it (start-up costs about a minute on CPU), stopping it
at exit; tests that crash and restart it leave it running again.
"""

from __future__ import annotations

import atexit

from ascl_data.testing.fault_proxy import FaultConfig, FaultProxy
from ascl_data.testing.vllm_server import VLLMServer, ServerError, unavailable_reason

_SHARED: VLLMServer | None = None


def shared_server() -> VLLMServer:
    """The process-wide vLLM server with the embedded SmolLM2 model, started on first call."""
    global _SHARED
    if _SHARED is None:
        from ascl_data.embedded import embedded_model_path

        _SHARED = VLLMServer(embedded_model_path())
        atexit.register(_SHARED.stop)
    if not _SHARED.running:
        _SHARED.start()
    return _SHARED


__all__ = ["FaultConfig", "FaultProxy", "ServerError", "VLLMServer", "shared_server", "unavailable_reason"]
