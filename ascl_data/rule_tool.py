"""`retrieve_safety_rules`: the one rule tool that generation, RL rollouts and evaluation all call.

A BM25 index (bm25s, English stop words, Snowball stemming) over each rule's title, text and cases. Because the
same object serves every stage, a trained model meets exactly the tool it was trained with. A query that shares
no indexed word with any rule (stop words only, another script) gets no rules and a note saying so: rules ranked
by nothing would read to the model as guidance.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import Stemmer

# bm25s imports numba where it is installed (vLLM installs it) and would JIT its retrieval: the index here is small, so
# numpy is as fast without the compile, and numba's llvmlite objects in a process make vLLM 0.32's workers fail at
# start (their kernel-override scan reads every loaded module). bm25s is imported with numba hidden, so it takes its
# numpy path; anyone else may still import numba.
if "numba" in sys.modules:
    import bm25s
else:
    sys.modules["numba"] = None  # type: ignore[assignment]  # `from numba import njit` raises ImportError
    try:
        import bm25s
    finally:
        del sys.modules["numba"]

from ascl_data.rulebook import Rule, Ruleset

TOOL_NAME = "retrieve_safety_rules"
NO_MATCH = (
    "No rule matched this query: it shares no word with the rule book. Describe the request in plain English "
    "words (what is asked for and why), or answer from the general principles."
)
DEFAULT_TOP_K = 3
MAX_TOP_K = 10
MAX_CATEGORIES = 3


class SchemaFunction(dict):
    """A function that is also its OpenAI tool schema. `apply_chat_template(tools=[...])` renders a dict as given
    (a plain function would be re-described from its docstring, losing the enum and bounds), and TRL calls a tool by
    its `__name__`, so a stock `GRPOTrainer(tools=[f])` shows and runs the same tool as the build."""

    def __init__(self, schema: dict[str, Any], fn: Callable[..., str]):
        super().__init__(schema)
        self.__name__ = fn.__name__
        self._fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return self._fn(*args, **kwargs)


@dataclass(frozen=True)
class Hit:
    rule: Rule
    score: float


class RuleToolError(ValueError):
    """A call the tool cannot serve (bad arguments). Its message goes back to the model as the tool result."""


class RuleTool:
    """Ranks a rule book's rules against a query, optionally within categories."""

    name = TOOL_NAME

    def __init__(self, ruleset: Ruleset, k1: float = 1.2, b: float = 0.75):
        self.ruleset = ruleset
        self._rules = list(ruleset.rules)
        self._categories = np.array([r.category for r in self._rules])
        self._tokenizer = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english"))
        corpus = self._tokenizer.tokenize(
            [r.search_text() for r in self._rules], update_vocab=True, return_as="ids", show_progress=False
        )
        self._index = bm25s.BM25(k1=k1, b=b)
        self._index.index(corpus, show_progress=False)

    # -- schema -------------------------------------------------------------
    def schema(self, strict: bool = False) -> dict[str, Any]:
        """The OpenAI tool schema; `categories` is an enum of this rule book's categories."""
        cats = self.ruleset.category_ids
        described = "; ".join(f"{c.id}: {c.title}" for c in self.ruleset.categories)
        fn: dict[str, Any] = {
            "name": TOOL_NAME,
            "description": (
                f"Look up safety rules from the rule book '{self.ruleset.name}' (v{self.ruleset.version}). "
                "Call it when you are unsure whether or how to help with a request; it returns the most relevant "
                "rules with examples of what is allowed, what is not, and borderline cases."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "What you want guidance on, in your own words.",
                    },
                    "categories": {
                        "type": "array",
                        "items": {"type": "string", "enum": cats},
                        # bounded so that constrained decoding of small models terminates
                        "maxItems": MAX_CATEGORIES,
                        "uniqueItems": True,
                        # the titles cost 133 of the ~750 prompt tokens of every request, but without them the
                        # embedded teacher's forced calls got worse (8 of 10 well-formed instead of >= 9; see
                        # tests/test_consult_policy.py), so they stay (docs/benchmarks.md, Teachers)
                        "description": f"Optional hazard categories to search within ({described}).",
                    },
                    "top_k": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_TOP_K,
                        "description": f"How many rules to return (default {DEFAULT_TOP_K}).",
                    },
                },
                "required": ["query"],
                "additionalProperties": False,
            },
        }
        if strict:
            fn["strict"] = True
        return {"type": "function", "function": fn}

    # -- search -------------------------------------------------------------
    def search(self, query: str, categories: Sequence[str] | None = None, top_k: int = DEFAULT_TOP_K) -> list[Hit]:
        """Up to `top_k` rules that share a word with the query, best first; none if no rule does."""
        if not isinstance(query, str) or not query.strip():
            raise RuleToolError("query must be a non-empty string")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise RuleToolError(f"top_k must be an integer from 1 to {MAX_TOP_K}, got {top_k!r}")
        allowed = np.ones(len(self._rules), dtype=bool)
        if categories:
            unknown = sorted(set(categories) - set(self.ruleset.category_ids))
            if unknown:
                raise RuleToolError(f"unknown categories {unknown}; known: {self.ruleset.category_ids}")
            allowed = np.isin(self._categories, list(categories))
        ids = self._tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)[0]
        if ids:
            scores = self._index.get_scores(ids)
        else:
            scores = np.zeros(len(self._rules), dtype=np.float32)
        scores = np.where(allowed, scores, -np.inf)
        k = min(top_k, int(allowed.sum()))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.lexsort((top, -scores[top]))]  # by score, ties by rule-book order: deterministic
        return [Hit(self._rules[i], float(scores[i])) for i in top if np.isfinite(scores[i]) and scores[i] > 0]

    def __call__(self, query: str, categories: Sequence[str] | None = None, top_k: int = DEFAULT_TOP_K) -> str:
        """Run the tool and return its JSON result, as a tool message's content."""
        return self._render(self.search(query, categories, top_k))

    def _render(self, hits: list[Hit]) -> str:
        payload = {
            "ruleset": f"{self.ruleset.name}@{self.ruleset.version}",
            "rules": [h.rule.as_tool_result() for h in hits],
        }
        if not hits:
            payload["note"] = NO_MATCH
        return json.dumps(payload, ensure_ascii=False)

    def call_json(self, arguments: str | dict[str, Any]) -> tuple[str, list[str]]:
        """Run a model's tool call; returns (content, retrieved rule ids). Bad arguments come back as an error text
        the model can read, never as an exception that ends the conversation."""
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
            if not isinstance(args, dict):
                raise RuleToolError("arguments must be a JSON object")
            extra = sorted(set(args) - {"query", "categories", "top_k"})
            if extra:
                raise RuleToolError(f"unexpected arguments {extra}")
            hits = self.search(args.get("query", ""), args.get("categories"), args.get("top_k", DEFAULT_TOP_K))
        except (RuleToolError, json.JSONDecodeError, TypeError) as exc:
            return json.dumps({"error": str(exc)}), []
        return self._render(hits), [h.rule.id for h in hits]

    def as_function(self) -> SchemaFunction:
        """The tool for TRL's `GRPOTrainer(tools=[...])`: callable, and rendered in prompts as `schema()` (the
        category enum included), exactly as the build's traces show it."""
        tool = self

        def retrieve_safety_rules(query: str, categories: list[str] | None = None, top_k: int = DEFAULT_TOP_K) -> str:
            """
            Look up safety rules relevant to a request, with examples of what is allowed, what is not, and borderline cases.

            Args:
                query: What you want guidance on, in your own words.
                categories: Optional hazard categories to search within.
                top_k: How many rules to return.

            Returns:
                The matching rules as JSON.
            """
            args: dict[str, Any] = {"query": query, "top_k": top_k}
            if categories:
                args["categories"] = categories
            return tool.call_json(args)[0]

        return SchemaFunction(self.schema(), retrieve_safety_rules)
