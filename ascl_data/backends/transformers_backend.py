"""`transformers`: an in-process model on CPU or GPU, the embedded default for small runs and tests.

Requests from all callers wait in one queue (`BatchQueue`): while the model generates a batch, the next fills with
whatever conversations arrive, up to `batch_size`. Each batch is rendered with the chat template (with `tools=`, under the request's consultation policy:
`ascl_data.backends.consult_policy`),
generated left-padded in a worker thread (the event loop stays free), and tool calls are parsed out of the text
with TRL's response parser (`ascl_data.toolcalls`). With a sampling seed, every conversation draws its tokens from
its own seed (Gumbel-max over the processed logits), so an answer depends on its request, not on which other
requests shared its batch: a resumed build regenerates exactly what an uninterrupted one would.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import xxhash

from ascl_data.backends.base import Backend, Completion, SamplingParams
from ascl_data.backends.batching import BatchQueue
from ascl_data.backends.consult_policy import PolicyPrompt, parse_completion, render_prompt

EMBEDDED = "embedded"


def _resolve_model(model: str | Path | None, seed_adapter: bool) -> str:
    if model is None or str(model) == EMBEDDED:
        if seed_adapter:
            from ascl_data.embedded_adapter import adapted_model_path

            return str(adapted_model_path())
        from ascl_data.embedded import embedded_model_path

        return str(embedded_model_path())
    return str(model)


class TransformersBackend(Backend):
    """`TransformersBackend()` runs the embedded SmolLM2 with the shipped seed adapter merged in
    (`ascl_data.embedded_adapter`; `seed_adapter=False`, in a recipe `teacher.settings.seed_adapter: false`, runs the
    bare model); `model=` takes any local folder or Hub id."""

    name = "transformers"

    def __init__(
        self,
        model: str | Path | None = EMBEDDED,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
        num_threads: int | None = None,
        seed_adapter: bool = True,
    ):
        from ascl_data.lazy import require_extra

        require_extra("embedded", "the transformers backend (an in-process teacher or judge)")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_threads is not None:
            torch.set_num_threads(num_threads)  # process-wide: on a shared CPU, fewer threads than cores is faster
        embedded = model is None or str(model) == EMBEDDED
        path = _resolve_model(model, seed_adapter)
        # the adapted model is named by its folder (`SmolLM2-135M-Instruct-seed-<adapter sha256>`): traces and the
        # request cache tell it from the bare model and from any other adapter
        self.model = Path(path).name if embedded else str(model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template
        if self.tokenizer.chat_template is None:
            raise ValueError(f"the tokenizer of {path} has no chat template; pass chat_template=")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        self.hf_model.to(device).eval()
        self._stop_ids = self._end_token_ids()
        self._lock = threading.Lock()  # one generate at a time on one model
        self.queue = BatchQueue(self._generate_sync, batch_size)

    @property
    def concurrency(self) -> int:
        """A batch generating and the next one filling."""
        return 2 * self.batch_size

    def _end_token_ids(self) -> list[int]:
        ids = set()
        eos = self.hf_model.generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        for marker in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(marker)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                ids.add(tid)
        return sorted(ids)

    def cache_identity(self) -> dict[str, Any]:
        """What changes answers beyond the model name: the chat template (nothing secret)."""
        return {"chat_template": self.tokenizer.chat_template}

    async def generate(
        self,
        conversations: list[list[dict[str, Any]]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> list[Completion]:
        return await self.queue.submit(conversations, tools, params)

    def _generate_sync(
        self, conversations: list[list[dict[str, Any]]], tools: list[dict[str, Any]] | None, params: SamplingParams
    ) -> list[Completion]:
        prompts: list[PolicyPrompt | None] = []
        errors: dict[int, Completion] = {}
        context = getattr(self.hf_model.config, "max_position_embeddings", None)
        for i, conv in enumerate(conversations):
            try:
                prompt = render_prompt(self.tokenizer, conv, tools, params.consult)
            except Exception as exc:  # noqa: BLE001 - a conversation the template rejects fails alone
                prompts.append(None)
                errors[i] = Completion(error=f"chat template failed: {type(exc).__name__}: {exc}")
                continue
            n = len(self.tokenizer(prompt.text, add_special_tokens=False)["input_ids"])
            if context is not None and n + params.max_tokens > context:
                # the guard: a prompt the model cannot take is rejected here, not run (or padded into its batch)
                prompts.append(None)
                errors[i] = Completion(error_reason="prompt_too_long", error=(
                    f"prompt_too_long: {n} prompt tokens + max_tokens {params.max_tokens} exceed the model's "
                    f"context of {context} tokens"))
                continue
            prompts.append(prompt)
        # Similar lengths share a batch, so left padding wastes little; results go back by index.
        ready = sorted((i for i, p in enumerate(prompts) if p is not None), key=lambda i: len(prompts[i].text))  # type: ignore[union-attr]
        results: dict[int, Completion] = dict(errors)
        with self._lock:
            for start in range(0, len(ready), self.batch_size):
                chunk = ready[start : start + self.batch_size]
                for i, completion in zip(chunk, self._generate_batch([prompts[i] for i in chunk], params)):  # type: ignore[misc]
                    results[i] = completion
        return [results[i] for i in range(len(conversations))]

    def _generate_batch(self, policy_prompts: list[PolicyPrompt], params: SamplingParams) -> list[Completion]:
        import torch

        start = time.perf_counter()
        prompts = [p.text for p in policy_prompts]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self._stop_ids,
        }
        if params.temperature > 0 and params.seed is not None:
            seeds = [xxhash.xxh64_intdigest(p.encode(), params.seed) >> 1 for p in prompts]
            kwargs["logits_processor"] = [RowSeededSampling(seeds, enc["input_ids"].shape[1], params)]
        elif params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        if params.stop:
            kwargs.update(stop_strings=params.stop, tokenizer=self.tokenizer)
        if any(p.forced for p in policy_prompts):
            kwargs["stopping_criteria"] = [ForcedCallClosed(policy_prompts, enc["input_ids"].shape[1], self.tokenizer)]
        try:
            with torch.inference_mode():
                generated = self.hf_model.generate(**enc, **kwargs)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: this batch fails, the build goes on
            return [Completion(error=f"generation failed: {type(exc).__name__}: {exc}") for _ in prompts]
        latency = time.perf_counter() - start
        new_tokens = generated[:, enc["input_ids"].shape[1] :].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        completions = []
        for prompt, prompt_len, ids in zip(policy_prompts, prompt_lens, new_tokens):
            finish = "length"
            for k, tid in enumerate(ids):
                if tid in self._stop_ids:
                    ids, finish = ids[: k + 1], "stop"
                    break
                if tid == self.tokenizer.pad_token_id:  # a row that ForcedCallClosed stopped, padded to the batch
                    ids = ids[:k]
                    break
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if prompt.call_closed(text):
                finish = "stop"
            if finish == "length" and params.stop and any(s in text for s in params.stop):
                finish = "stop"
            text, parsed = parse_completion(prompt, text, self.tokenizer)
            completions.append(
                Completion(
                    message=parsed.message,
                    raw_text=text,
                    prompt_tokens=int(prompt_len),
                    completion_tokens=len(ids),
                    latency_s=latency,
                    finish_reason=finish,
                )
            )
        return completions

    async def aclose(self) -> None:
        self.hf_model = None  # type: ignore[assignment]


class ForcedCallClosed:
    """A stopping criterion: a row whose turn was forced to be a tool call (`consult: required`) is done once the
    model has closed the forced argument (`PolicyPrompt.call_closed`); the rest of the call is the template's own
    closing, so tokens after it would be generated only to be cut. Rows without a forced start end as usual."""

    def __init__(self, prompts: list[PolicyPrompt], prompt_len: int, tokenizer: Any):
        self.prompts, self.prompt_len, self.tokenizer = prompts, prompt_len, tokenizer

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = [
            bool(p.forced) and p.call_closed(self.tokenizer.decode(row[self.prompt_len :], skip_special_tokens=True))
            for p, row in zip(self.prompts, input_ids.tolist())
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class RowSeededSampling:
    """A logits processor that samples each row from softmax(logits / temperature), cut to `top_p`, with the row's
    own seed (Gumbel-max: the argmax of the logits plus seeded Gumbel noise is a sample), and hands greedy decoding
    that one token. The draw for row r at step t depends on (seed_r, t) alone."""

    def __init__(self, seeds: list[int], prompt_len: int, params: SamplingParams):
        self.seeds, self.prompt_len = seeds, prompt_len
        self.temperature, self.top_p = params.temperature, params.top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        step = input_ids.shape[1] - self.prompt_len
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            ordered, order = logits.sort(dim=-1, descending=True)
            outside = ordered.softmax(dim=-1).cumsum(dim=-1) - ordered.softmax(dim=-1) >= self.top_p
            logits = logits.masked_fill(outside.scatter(-1, order, outside), float("-inf"))
        noise = torch.stack([
            torch.rand(logits.shape[-1], generator=torch.Generator().manual_seed(seed + step))
            for seed in self.seeds
        ]).clamp_(1e-20, 1.0 - 1e-7).to(logits.device)
        choice = (logits - torch.log(-torch.log(noise))).argmax(dim=-1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, choice[:, None], 0.0)
