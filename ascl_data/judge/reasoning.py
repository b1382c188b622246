"""Check a reasoning answer against its reference with Hugging Face's `math_verify` (parse, then verify).

`math_verify` finds the answer in free text (\\boxed{}, "The answer is 42", LaTeX, "1,234") and compares
expressions symbolically, so "1/2", "0.5" and "\\frac{1}{2}" agree. Its timeouts use SIGALRM, which only works in
the main thread: there we keep them (a pathological expression cannot hang a build); in a worker thread (an
executor, a dataloader, an RL reward worker) we pass ``parsing_timeout=None`` / ``timeout_seconds=None`` and
instead bound the work by capping the text length.
"""

from __future__ import annotations

import re
import threading

from math_verify import parse, verify

__all__ = ["check_reasoning", "MAX_ANSWER_CHARS"]

MAX_ANSWER_CHARS = 20_000  # the tail is kept: final answers come last
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_TIMEOUT_S = 5


def _timeouts() -> dict[str, int | None]:
    main = threading.current_thread() is threading.main_thread()
    return {"timeout": _TIMEOUT_S if main else None}


def _parse(text: str, timeout: int | None) -> list:
    return parse(text, parsing_timeout=timeout)  # type: ignore[arg-type]  # None disables the signal alarm


def _parse_reference(reference: str, timeout: int | None) -> list:
    """A bare reference ("42", "1,234", "\\frac{1}{2}", "x=3") is read as math, not searched for like prose."""
    ref = reference.strip()
    if "$" in ref or "\\boxed" in ref or "\\(" in ref or "\\[" in ref:
        return _parse(ref, timeout)
    return _parse(f"${ref}$", timeout) or _parse(ref, timeout)


def check_reasoning(answer_text: str, reference: str) -> tuple[bool, str]:
    """Whether the answer in `answer_text` equals `reference` mathematically; returns (ok, detail for a person)."""
    if not reference or not reference.strip():
        return False, "no reference answer to check against"
    text = _THINK.sub(" ", answer_text or "").strip()
    if not text:
        return False, "empty answer"
    text = text[-MAX_ANSWER_CHARS:]
    timeout = _timeouts()["timeout"]
    try:
        gold = _parse_reference(reference, timeout)
        if not gold:
            return False, f"could not parse the reference {reference!r}"
        pred = _parse(text, timeout)
        if not pred:
            return False, "no final answer found in the response"
        ok = verify(gold, pred, timeout_seconds=timeout)
    except Exception as exc:  # math_verify raises on timeouts in rare paths; a bad answer must not sink a build
        return False, f"math_verify error: {type(exc).__name__}: {exc}"
    shown = pred[-1] if isinstance(pred[-1], str) else str(pred[0])
    if ok:
        return True, f"answer {shown!r} matches reference {reference!r}"
    return False, f"answer {shown!r} does not match reference {reference!r}"
