"""Trace quality: cheap per-trace measures of whether the model asked for the right rules, got them and used them,
computed by the build after the judge (`Scheduler`), stored with each trace (`TraceQuality`), filtered by the
recipe's `quality:` section and summed up by kind in stats and the card.

The judge says whether an answer fits its prompt's kind; it cannot see a vague tool query, retrieved rules from the
wrong category, or an answer that cites a rule it never retrieved (or one the rule book does not have). These can:

- retrieval fit: the share of the retrieved rules in the prompt's category (when the source gives a category the
  rule book has) and the rank of the first such rule;
- query fit: the share of the rules the tool calls retrieved that the prompt itself retrieves (in its top 5), asked
  through the same index with the same categories (`RuleTool.search`): a query that retrieves what the request
  would is on topic;
- citation faithfulness: rule ids and titles the answer names, those no tool call retrieved, and ids (a rule-book
  category, "/", a slug) the rule book does not have;
- answer length, and `tool_echo`: the share of the answer's word 8-grams found verbatim in the tool responses (an
  answer that copies the rules back).

None of them calls a model; together they cost tens of microseconds a trace (benchmarks/bench_quality.py). What
rules cannot see (is the answer helpful, does it follow the retrieved rule) an optional model rater scores, through
the judge's backends, off by default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any


from ascl_data.judge.model_judge import answer_body, json_objects
from ascl_data.schemas import Rejection, Trace, TraceQuality

if TYPE_CHECKING:
    from ascl_data.backends.base import Backend
    from ascl_data.cache import RequestCache
    from ascl_data.recipe import QualityConfig, RaterConfig
    from ascl_data.rule_tool import RuleTool

ECHO_NGRAM = 8  # words: a shared run this long is copied text, not shared vocabulary
# how deep the prompt's own ranking counts for `query_fit`: a query that strips a jailbreak's wrapper ranks the
# rule the prompt ranks 4th first; every hand-written seed query fits at 5, a vague one ("making a sound" for a pipe
# bomb) still does not
QUERY_FIT_DEPTH = 5
_WORD = re.compile(r"\w+")

#: filter key (the recipe's `quality.<key>`) -> the rejection reasons it can give
REASONS: dict[str, tuple[str, ...]] = {
    "off_category_retrieval": ("off_category_retrieval",),
    "off_topic_query": ("off_topic_query",),
    "hallucinated_citation": ("hallucinated_citation",),
    "repeats_tool_response": ("repeats_tool_response",),
    "answer_length": ("answer_too_short", "answer_too_long"),
    "low_rating": ("low_rating",),
}


# --------------------------------------------------------------------------- the measures


def _ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _tool_strings(value: Any) -> list[str]:
    """The strings of a rule's tool result, in the order the JSON shows them."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [s for item in items for s in _tool_strings(item)]


class QualityMeter:
    """The cheap measures against one rule book and its retrieval index (the build's own `RuleTool`)."""

    def __init__(self, rule_tool: RuleTool):
        from ascl_data.rule_tool import DEFAULT_TOP_K

        self.rule_tool = rule_tool
        self.default_top_k = DEFAULT_TOP_K
        ruleset = rule_tool.ruleset
        self.categories = frozenset(ruleset.category_ids)
        self.category_of = {r.id: r.category for r in ruleset.rules}
        # a rule id the answer writes: a category of this rule book, "/", a slug (kebab, as RULE_ID; underscores too,
        # as made-up ids have them)
        cats = "|".join(sorted(map(re.escape, self.categories), key=len, reverse=True))
        self._id = re.compile(rf"(?<![\w/])(?:{cats})/[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?![\w/])")
        self._title_of = {self._norm(r.title): r.id for r in ruleset.rules}
        # each rule's words as the tool response shows them (title, text, cases), for `tool_echo`; n-gram sets are
        # made on first use per (rule, n) and kept: a rule book has a few hundred rules
        self._words = {r.id: _WORD.findall(" ".join(_tool_strings(r.as_tool_result())).lower()) for r in ruleset.rules}
        self._grams: dict[tuple[str, int], set[tuple[str, ...]]] = {}

    @staticmethod
    def _norm(text: str) -> str:
        return " ".join(text.lower().replace("\u2019", "'").split())

    def measure(self, trace: Trace) -> TraceQuality:
        answer = trace.final_answer
        q = TraceQuality(answer_chars=len(answer))
        if trace.consulted:
            calls = self._calls(trace)
            retrieved = list(dict.fromkeys(rid for _, ids in calls for rid in ids))
            if trace.category in self.categories:
                fits = [self.category_of.get(rid) == trace.category for rid in retrieved]
                q.retrieval_fit = sum(fits) / len(fits) if fits else 0.0
                q.retrieval_fit_rank = fits.index(True) + 1 if any(fits) else None
            q.query_fit = self._query_fit(self._prompt_text(trace), calls)
            q.tool_echo = self._echo(answer, retrieved)
        else:
            retrieved = []
        self._citations(answer, set(retrieved), q)
        return q

    @staticmethod
    def _prompt_text(trace: Trace) -> str:
        """The request: the last user turn before the first assistant turn."""
        text = ""
        for m in trace.messages:
            if m.role == "assistant":
                break
            if m.role == "user":
                text = m.content or ""
        return text

    def _calls(self, trace: Trace) -> list[tuple[dict[str, Any], list[str]]]:
        """Each rule-tool call's arguments with the rule ids its response held (what the model read)."""
        args_of: dict[str, dict[str, Any]] = {}
        calls: list[tuple[dict[str, Any], list[str]]] = []
        for m in trace.messages:
            for call in m.tool_calls or []:
                if call.function.name == self.rule_tool.name:
                    try:
                        args_of[call.id] = call.function.parsed_arguments()
                    except ValueError:
                        args_of[call.id] = {}
            if m.role == "tool" and m.content is not None:
                if m.tool_call_id in args_of:
                    try:
                        payload = json.loads(m.content)
                        ids = [r["id"] for r in payload.get("rules", [])]
                    except (ValueError, AttributeError, TypeError, KeyError):
                        ids = []
                    calls.append((args_of[m.tool_call_id], ids))
        return calls

    def _query_fit(self, prompt: str, calls: list[tuple[dict[str, Any], list[str]]]) -> float:
        """Share of the rules the calls retrieved that the prompt retrieves with each call's own arguments, looking
        `QUERY_FIT_DEPTH` rules deep (or `top_k`, if more); 0 when the calls retrieved nothing (a query that finds no
        rule is no fit)."""
        got: set[str] = set()
        would: set[str] = set()
        searched: set[tuple[Any, ...]] = set()  # calls with the same categories and depth need one search
        for args, ids in calls:
            got.update(ids)
            if ids and prompt.strip():
                try:
                    depth = max(QUERY_FIT_DEPTH, args.get("top_k", self.default_top_k))
                    key = (tuple(args.get("categories") or ()), depth)
                    hits = [] if key in searched else self.rule_tool.search(prompt, args.get("categories"), depth)
                    searched.add(key)
                except (ValueError, TypeError):
                    hits = []
                would.update(h.rule.id for h in hits)
        return len(got & would) / len(got) if got else 0.0

    def _echo(self, answer: str, retrieved: list[str]) -> float:
        """Share of the answer's word n-grams (n = 8, or the whole answer when shorter) found in the rules the tool
        returned (their title, text and cases, as the response shows them)."""
        words = _WORD.findall(answer.lower())
        known = [rid for rid in retrieved if rid in self._words]
        if not words or not known:
            return 0.0
        n = min(ECHO_NGRAM, len(words))
        mine = _ngrams(words, n)
        copied: set[tuple[str, ...]] = set()
        for rid in known:
            grams = self._grams.get((rid, n))
            if grams is None:
                grams = self._grams[rid, n] = _ngrams(self._words[rid], n)
            copied |= mine & grams
        return len(copied) / len(mine)

    def _citations(self, answer: str, retrieved: set[str], q: TraceQuality) -> None:
        lowered = self._norm(answer)
        named: list[str] = []
        for m in self._id.finditer(lowered) if "/" in lowered else ():
            rid = m.group(0)
            if rid in self.category_of:
                named.append(rid)
            elif rid not in q.unknown_rules:
                q.unknown_rules.append(rid)
        # titles by substring search (a C loop per title beats one large alternation), in order of appearance
        found = []
        for title, rid in self._title_of.items():
            at = lowered.find(title)
            while at >= 0:
                end = at + len(title)
                if (at == 0 or not lowered[at - 1].isalnum()) and (end == len(lowered) or not lowered[end].isalnum()):
                    found.append((at, rid))
                    break
                at = lowered.find(title, at + 1)
        named += [rid for _, rid in sorted(found)]
        q.cited_rules = list(dict.fromkeys(named))
        q.cited_not_retrieved = [rid for rid in q.cited_rules if rid not in retrieved]


# --------------------------------------------------------------------------- the filters


def fired(q: TraceQuality, config: QualityConfig) -> list[tuple[str, str, str]]:
    """The filters `q` trips, as (filter key, reason, detail); a filter set to `off` is not checked."""
    out: list[tuple[str, str, str]] = []

    def check(key: str, reason: str, hit: bool, detail: str) -> None:
        if getattr(config, key) != "off" and hit:
            out.append((key, reason, detail))

    if q.retrieval_fit is not None:
        rank, limit = q.retrieval_fit_rank, config.max_fit_rank
        check("off_category_retrieval", "off_category_retrieval", rank is None or (limit is not None and rank > limit),
              "no retrieved rule is in the prompt's category" if rank is None else
              f"the first retrieved rule in the prompt's category ranks {rank} (quality.max_fit_rank: {limit})")
    if q.query_fit is not None:
        check("off_topic_query", "off_topic_query", q.query_fit < config.min_query_fit,
              f"query fit {q.query_fit:.2f} < quality.min_query_fit {config.min_query_fit}: the prompt itself "
              "retrieves other rules than the tool query did")
    bad = q.cited_not_retrieved + q.unknown_rules
    check("hallucinated_citation", "hallucinated_citation", bool(bad),
          "; ".join([*(f"names {r}, which no tool call retrieved" for r in q.cited_not_retrieved),
                     *(f"names {r}, which the rule book does not have" for r in q.unknown_rules)]))
    if q.tool_echo is not None:
        check("repeats_tool_response", "repeats_tool_response", q.tool_echo >= config.max_tool_echo,
              f"{q.tool_echo:.0%} of the answer's word {ECHO_NGRAM}-grams are copied from the tool response "
              f"(quality.max_tool_echo {config.max_tool_echo})")
    check("answer_length", "answer_too_short", q.answer_chars < config.min_answer_chars,
          f"{q.answer_chars} characters < quality.min_answer_chars {config.min_answer_chars}")
    if config.max_answer_chars is not None:
        check("answer_length", "answer_too_long", q.answer_chars > config.max_answer_chars,
              f"{q.answer_chars} characters > quality.max_answer_chars {config.max_answer_chars}")
    ratings = {"helpful": q.rating_helpful, "rule_use": q.rating_rule_use}
    low = {k: v for k, v in ratings.items() if v is not None and v < config.min_rating}
    check("low_rating", "low_rating", bool(low),
          ", ".join(f"{k} {v}" for k, v in low.items()) + f" < quality.min_rating {config.min_rating}"
          + (f" ({q.rating_detail})" if q.rating_detail else ""))
    return out


# --------------------------------------------------------------------------- the optional model rater

RATER_SCALE = {
    "helpful": "5: serves the user fully within what is safe (for a request that must be declined: declines briefly "
               "and offers real safe help); 3: partly; 1: not at all (empty, off-topic, needless refusal, or the "
               "rules copied back)",
    "rule_use": "5: follows the retrieved rules exactly; 3: partly; 1: contradicts them or cites rules it did not "
                "retrieve (with no rules retrieved: against general safety principles)",
}

RATER_PROMPT = f"""You rate one answer of an AI assistant that may consult safety rules through a tool before it \
answers. You see the user's request, the rules the assistant retrieved (if any) and its final answer. Rate two \
things, each an integer from 1 to 5:
- helpful: {RATER_SCALE["helpful"]}.
- rule_use: {RATER_SCALE["rule_use"]}.
Answer with one JSON object and nothing else:
{{"helpful": <1-5>, "rule_use": <1-5>, "reason": "<one sentence>"}}"""

_SCORE = re.compile(r"\b(helpful|rule_use)[\"'*\s]*[:=][\s\"'*]*([1-5])\b", re.I)


def parse_rating(text: str) -> tuple[int, int, str] | None:
    """(helpful, rule_use, reason) from a rater's answer: a JSON object, else `helpful: 4` lines; None if neither."""
    body = answer_body(text)
    for obj in json_objects(body):
        scores = [obj.get("helpful"), obj.get("rule_use")]
        if all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 5 for s in scores):
            return scores[0], scores[1], str(obj.get("reason", ""))[:300]
    found = {k.lower(): int(v) for k, v in _SCORE.findall(body)}
    if "helpful" in found and "rule_use" in found:
        return found["helpful"], found["rule_use"], ""
    return None


class ModelRater:
    """Scores a trace 1-5 for helpfulness and rule use with a model behind any backend (the judge's)."""

    def __init__(self, backend: Backend, prompt: str | None = None, max_tokens: int = 256):
        from ascl_data.backends.base import SamplingParams

        self.backend = backend
        self.prompt = prompt or RATER_PROMPT
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens)

    def conversation(self, trace: Trace, ruleset: Any) -> list[dict[str, Any]]:
        request = QualityMeter._prompt_text(trace)
        rules = [ruleset.get(rid) for rid in trace.retrieved_rule_ids]
        shown = "\n".join(f"- {r.id}: {r.title}. {r.text}" for r in rules) or "(none: the assistant did not consult)"
        user = (f"[REQUEST]\n{request}\n[/REQUEST]\n\n[RETRIEVED RULES]\n{shown}\n[/RETRIEVED RULES]\n\n"
                f"[ANSWER]\n{trace.final_answer}\n[/ANSWER]\n\nRate the answer. Answer with the JSON object only.")
        return [{"role": "system", "content": self.prompt}, {"role": "user", "content": user}]

    async def rate(self, trace: Trace, ruleset: Any) -> tuple[int | None, int | None, str]:
        """(helpful, rule_use, reason or why there is no rating); a failure leaves the trace unrated, never raises
        (a `FatalError`, such as refused credentials, stops the build as for the judge)."""
        from ascl_data.errors import FatalError

        try:
            (c,) = await self.backend.generate([self.conversation(trace, ruleset)], None, self.params)
        except FatalError:
            raise
        except Exception as exc:  # noqa: BLE001 - an outage leaves traces unrated, it does not stop the build
            return None, None, f"rater backend error: {type(exc).__name__}: {exc}"
        if c.error or c.message is None:
            return None, None, f"rater backend error: {c.error or 'no message'}"
        raw = c.message.get("content") or c.raw_text or ""
        parsed = parse_rating(raw)
        if parsed is None:
            return None, None, f"unparseable rater output: {raw[:200]!r}"
        return parsed


# --------------------------------------------------------------------------- the build's hook


class QualityCheck:
    """What the build runs after the judge: the measures, the rater (if on), then the recipe's filters."""

    def __init__(self, rule_tool: RuleTool, config: QualityConfig, rater: ModelRater | None = None):
        self.meter = QualityMeter(rule_tool)
        self.config = config
        self.rater = rater

    async def check(self, trace: Trace) -> Trace | Rejection:
        """The judged trace with its quality fields, or a rejection at stage `quality` when a filter set to
        `reject` fires (its reason the first such filter's; its detail every one's)."""
        q = self.meter.measure(trace)
        hits = fired(q, self.config)
        if self.rater is not None and not any(getattr(self.config, key) == "reject" for key, _, _ in hits):
            # rated only when no cheap filter rejects the trace: a rater call costs a model request
            q.rating_helpful, q.rating_rule_use, q.rating_detail = await self.rater.rate(trace, self.meter.rule_tool.ruleset)
            hits = fired(q, self.config)
        q.flags = [reason for _, reason, _ in hits]
        rejecting = [(reason, detail) for key, reason, detail in hits if getattr(self.config, key) == "reject"]
        if not rejecting:
            return trace.model_copy(update={"quality": q})
        return Rejection(prompt_id=trace.prompt_id, kind=trace.kind, stage="quality", reason=rejecting[0][0],
                         detail="; ".join(f"{r}: {d}" for r, d in rejecting), generator=trace.generator,
                         raw=json.dumps(trace.chat_messages(), ensure_ascii=False), quality=q)

    def annotate(self, rejection: Rejection, trace: Trace) -> Rejection:
        """A judge's rejection of `trace`, with the trace's cheap quality fields (no rater call, no filter)."""
        return rejection.model_copy(update={"quality": self.meter.measure(trace)})


def make_quality_check(config: QualityConfig, rule_tool: RuleTool, cache: RequestCache) -> QualityCheck:
    """The recipe's quality check; a rater's backend goes through the teacher's request cache, as the judge's does,
    so a resumed build repeats no rater call."""
    rater = make_rater(config.rater, cache) if config.rater is not None else None
    return QualityCheck(rule_tool, config, rater)


def make_rater(config: RaterConfig, cache: RequestCache | None = None) -> ModelRater:
    """The recipe's rater, its backend built from the section's typed settings (`build_backend`: an InputError
    names `quality.rater.<field>` when one is missing or bad), behind the request cache when there is one."""
    from ascl_data.backends import build_backend
    from ascl_data.cache import CachedBackend

    backend: Backend = build_backend(config, role="rater")
    if cache is not None:
        backend = CachedBackend(backend, cache)
    return ModelRater(backend, config.prompt, config.max_tokens)
