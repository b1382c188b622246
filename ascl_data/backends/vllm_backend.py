"""The `vllm` teacher backend: the in-process `vllm.LLM` batch engine (optional extra `vllm`).

Why in-process: on one GPU, one `llm.chat(...)` call over many conversations is a fast way to generate. The build's
conversations advance on their own; their requests wait in one queue (`BatchQueue`), and each `llm.chat` takes
whatever waits (up to `batch_size`), so the engine's batches stay full. (vLLM's asynchronous engine would batch at
token level; its API changes between releases, so this backend keeps the stable `LLM` API.) The engine
returns text, so tool calls and reasoning are parsed from it (`<tool_call>` / `<think>`) with
`ascl_data.toolcalls`, the same parser the transformers backend and TRL's reading use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.backends.batching import BatchQueue
from ascl_data.backends.consult_policy import PolicyPrompt, offered_tools, parse_completion, render_prompt
from ascl_data.toolcalls import parse_assistant_text, template_messages


def cpu_dtype() -> str:
    """The dtype for vLLM on a CPU: bfloat16 only where the CPU computes it natively (AVX512-BF16 or AMX). On an
    AVX2-only CPU vLLM's bf16 path is emulated: serving the embedded SmolLM2 on this project's AVX2 test machine, 16
    consult conversations at concurrency 16 took 49 s in float32, while in bfloat16 4 warm-up conversations had not
    finished after 4.5 min (benchmarks/bench_build_throughput.py)."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.is_file() else ""
    return "bfloat16" if re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) else "float32"


class VLLMBackend(Backend):
    """`make_backend("vllm", model="Qwen/Qwen3-8B", max_model_len=8192)`. Extra engine arguments go in
    `engine_kwargs` (passed to `vllm.LLM`); `chat_template` overrides the tokenizer's; `chat_template_kwargs`
    (e.g. `{"enable_thinking": true}`) go to the template on every turn."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        seed: int = 0,
        chat_template: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        batch_size: int = 256,
    ):
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "the `vllm` backend needs vLLM: pip install 'ascl-data[vllm]' (GPU), or use the `openai` backend "
                f"against a vLLM server ({exc})"
            ) from None
        if not model:
            raise ValueError("the vllm backend needs a model (a Hub id or a local folder)")
        self.model = model
        if dtype == "auto":
            from vllm.platforms import current_platform

            dtype = cpu_dtype() if current_platform.is_cpu() else dtype
        template = chat_template
        if template is not None and "{" not in template and Path(template).is_file():
            template = Path(template).read_text(encoding="utf-8")
        self._chat_template = template
        self._chat_template_kwargs = dict(chat_template_kwargs or {})
        self._engine_args: dict[str, Any] = {
            "model": model,
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "seed": seed,
            **({"max_model_len": max_model_len} if max_model_len else {}),
            **(engine_kwargs or {}),
        }
        self._llm: Any = None
        self.batch_size = batch_size
        # The engine is not thread-safe: one `llm.chat` at a time, off the event loop; requests that wait meanwhile
        # form the next batch (vLLM's per-request seeds keep each answer independent of its batch).
        self.queue = BatchQueue(self.generate_sync, batch_size)

    @property
    def concurrency(self) -> int:
        """A batch generating and the next one filling."""
        return 2 * self.batch_size

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.model!r})"

    @property
    def llm(self) -> Any:
        """The engine, built on first use (loading weights takes a while; constructing the backend should not)."""
        if self._llm is None:
            from vllm import LLM

            self._llm = LLM(**self._engine_args)
        return self._llm

    @property
    def tokenizer(self) -> Any:
        return self.llm.get_tokenizer()

    def _sampling(self, params: SamplingParams) -> Any:
        from vllm import SamplingParams as VSamplingParams

        return VSamplingParams(
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            stop=params.stop,
            skip_special_tokens=False,  # keep <tool_call>/<think> markers for the parser
        )

    def generate_sync(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        """One batched `llm.chat` over all conversations; a failure of the engine marks every item with it."""
        if not conversations:
            return []
        import time

        started = time.perf_counter()
        forced: list[PolicyPrompt] | None = None
        try:
            if params.consult == "required":  # prefixed generation: the prompt ends with the start of the call
                tokenizer = self.tokenizer
                if self._chat_template is not None:
                    tokenizer.chat_template = self._chat_template
                forced = [render_prompt(tokenizer, c, tools, params.consult) for c in conversations]
                outputs = self.llm.generate([p.text for p in forced], self._sampling(params), use_tqdm=False)
            else:
                outputs = self.llm.chat(
                    [template_messages(c) for c in conversations],
                    self._sampling(params),
                    use_tqdm=False,
                    chat_template=self._chat_template,
                    add_generation_prompt=True,
                    tools=offered_tools(params.consult, tools),
                    chat_template_kwargs=self._chat_template_kwargs or None,
                )
        except (ValueError, RuntimeError, TypeError) as exc:
            return [Completion(error=f"engine_error: {type(exc).__name__}: {exc}") for _ in conversations]
        latency = time.perf_counter() - started
        tokenizer = self.tokenizer
        completions = []
        for k, out in enumerate(outputs):
            choice = out.outputs[0]
            if forced is not None:
                text, parsed = parse_completion(forced[k], choice.text, tokenizer)
            else:
                text = choice.text
                parsed = parse_assistant_text(text, tokenizer=tokenizer)
            completions.append(
                Completion(
                    message=parsed.message if parsed.ok else None,
                    raw_text=text,
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(choice.token_ids or []),
                    latency_s=latency,
                    finish_reason=choice.finish_reason,
                )
            )
        return completions

    async def generate(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        return await self.queue.submit(conversations, tools, params)

    async def aclose(self) -> None:
        self._llm = None
