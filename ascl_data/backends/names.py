"""The backends by name: a leaf, so that configs (the recipe's teacher, the judge's backend) can check a name
without importing any backend."""

from __future__ import annotations

BACKENDS: dict[str, str] = {
    "transformers": "ascl_data.backends.transformers_backend:TransformersBackend",
    "openai": "ascl_data.backends.openai_backend:OpenAIBackend",
    "vllm": "ascl_data.backends.vllm_backend:VLLMBackend",
}
