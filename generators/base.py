"""What every generator shares: a conversation plan (system prompt, tools, limits) driven through the tool loop.

A generator turns prompt records into traces. Subclasses say which tools are offered and what the system prompt
is; the loop, the trace assembly and the schema check live here, so every generator loses nothing: each record
comes back as a `Trace` or a `Rejection`, in input order.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import xxhash
from pydantic import ValidationError

from ascl_data.backends.base import Backend, SamplingParams
from ascl_data.backends.consult_policy import POLICIES, ConsultPolicy, offered_tools
from ascl_data.errors import InputError, Problem
from ascl_data.rule_tool import RuleTool
from ascl_data.schemas import KINDS, PromptRecord, Rejection, Trace
from ascl_data.tool_loop import LoopOutcome, run_conversation, run_tool_loop


class Generator(abc.ABC):
    """Subclass, set `name`, implement `tools()` and `default_system_prompt()`; declare extra options in `OPTIONS`."""

    name: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Any]] = {}  # option -> default, for options beyond the common ones

    def __init__(
        self,
        rule_tool: RuleTool,
        *,
        max_turns: int = 4,
        max_tool_calls: int = 3,
        system_prompt: str | None = None,
        reject_truncated: bool = True,
        consult: dict[str, ConsultPolicy] | None = None,
        attempts: int = 1,
        **options: Any,
    ):
        problems = []
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            known = sorted(["max_turns", "max_tool_calls", "system_prompt", "reject_truncated", "consult", "attempts",
                            *self.OPTIONS])
            problems.append(Problem(f"generator {self.name}", ",".join(unknown), f"unknown option(s); known: {known}"))
        if not isinstance(max_turns, int) or max_turns < 1:
            problems.append(Problem(f"generator {self.name}", "max_turns", f"must be an integer >= 1, got {max_turns!r}"))
        if not isinstance(max_tool_calls, int) or max_tool_calls < 0:
            problems.append(
                Problem(f"generator {self.name}", "max_tool_calls", f"must be an integer >= 0, got {max_tool_calls!r}")
            )
        if not isinstance(attempts, int) or attempts < 1:
            problems.append(Problem(f"generator {self.name}", "attempts", f"must be an integer >= 1, got {attempts!r}"))
        for kind, policy in (consult or {}).items():
            if kind not in KINDS or policy not in POLICIES:
                problems.append(Problem(f"generator {self.name}", f"consult.{kind}",
                                        f"kinds are {list(KINDS)}, policies {list(POLICIES)}; got {kind}: {policy}"))
        if system_prompt is not None and not system_prompt.strip():
            problems.append(Problem(f"generator {self.name}", "system_prompt", "must not be blank"))
        if problems:
            raise InputError(f"generator {self.name!r} options", problems)
        self.rule_tool = rule_tool
        self.ruleset = rule_tool.ruleset
        self.max_turns = max_turns
        self.max_tool_calls = max_tool_calls
        self.reject_truncated = reject_truncated
        self.consult: dict[str, ConsultPolicy] = dict(consult or {})
        self.attempts = attempts
        self.options = {**self.OPTIONS, **options}
        self._system_prompt = system_prompt

    # -- the plan -------------------------------------------------------------
    @abc.abstractmethod
    def tools(self) -> list[dict[str, Any]]:
        """The OpenAI tool schemas offered to the teacher (may be empty)."""

    @abc.abstractmethod
    def default_system_prompt(self) -> str:
        """The system prompt when the recipe gives none."""

    def system_prompt(self) -> str:
        return self._system_prompt if self._system_prompt is not None else self.default_system_prompt()

    def conversation(self, record: PromptRecord) -> list[dict[str, Any]]:
        """The opening messages: our system prompt, merged with a system turn the record brings (templates only
        honour one system message, at the start)."""
        messages = [m.model_dump() for m in record.messages]
        system = self.system_prompt()
        if messages and messages[0]["role"] == "system":
            system = f"{system}\n\n{messages[0]['content']}"
            messages = messages[1:]
        return [{"role": "system", "content": system}, *messages]

    # -- running --------------------------------------------------------------
    async def generate(
        self, records: Sequence[PromptRecord], backend: Backend, params: SamplingParams
    ) -> list[Trace | Rejection]:
        """One trace or rejection per record, in order; all records of a turn go to the backend in one batch."""
        if not records:
            return []
        tools = self.tools()
        outcomes = await run_tool_loop([self.conversation(r) for r in records], backend, params, **self._plan(tools))
        return [self.finish(r, o, backend, tools) for r, o in zip(records, outcomes)]

    async def generate_one(
        self, record: PromptRecord, backend: Backend, params: SamplingParams, attempt: int = 0
    ) -> Trace | Rejection:
        """One record's trace or rejection, its turns sent as soon as each is ready (no batch to wait for), under
        the consultation policy for its kind; `attempt` k > 0 samples with a seed derived from k (`attempt_params`)."""
        params = self.attempt_params(record, params, attempt)
        tools = offered_tools(params.consult, self.tools()) or []
        outcome = await run_conversation(self.conversation(record), backend, params, **self._plan(tools))
        return self.finish(record, outcome, backend, tools)

    def policy(self, kind: str | None) -> ConsultPolicy:
        """The consultation policy for prompts of `kind` (`auto` where the recipe names none)."""
        return self.consult.get(kind or "", "auto")

    def attempt_params(self, record: PromptRecord, params: SamplingParams, attempt: int) -> SamplingParams:
        """The sampling parameters of one attempt: the kind's policy, and for attempt k > 0 a seed derived from
        (seed, k), so each attempt draws another answer and has its own request-cache key."""
        update: dict[str, Any] = {"consult": self.policy(record.kind)}
        if attempt:
            update["seed"] = xxhash.xxh64_intdigest(f"{params.seed}:attempt{attempt}".encode()) >> 33
        return params.model_copy(update=update)

    def _plan(self, tools: list[dict[str, Any]]) -> dict[str, Any]:
        """The tool loop's options for this generator."""
        return {"tools": tools, "rule_tool": self.rule_tool, "max_turns": self.max_turns,
                "max_tool_calls": self.max_tool_calls, "reject_truncated": self.reject_truncated}

    def finish(
        self, record: PromptRecord, outcome: LoopOutcome, backend: Backend, tools: list[dict[str, Any]]
    ) -> Trace | Rejection:
        if not outcome.ok:
            return outcome.to_rejection(record, self.name)
        try:
            return Trace(
                prompt_id=record.id,
                kind=record.kind,
                category=record.category,
                messages=outcome.messages,
                tools=tools,
                generator=self.name,
                teacher_model=backend.model or backend.name,
                ruleset_name=self.ruleset.name,
                ruleset_version=self.ruleset.version,
                retrieved_rule_ids=outcome.retrieved_rule_ids,
                num_tool_calls=outcome.num_tool_calls,
                consulted=outcome.num_tool_calls > 0,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                teacher_calls=outcome.turns,
                reference=record.reference,
                provenance=record.provenance,
            )
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'trace'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            return Rejection(
                prompt_id=record.id,
                kind=record.kind,
                stage="schema",
                reason="invalid_trace",
                detail=detail,
                generator=self.name,
                raw=outcome.raw(),
                teacher_calls=outcome.turns,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
            )
