"""Trace quality (`ascl_data.pipeline.quality`): the per-trace fields on real traces (the default rule book, its real
retrieval index, the hand-written seed traces), the recipe's filters with their reasons through a real build, the
fields' round trip through parquet and `datasets`, the card's quality section and the optional model rater."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from ascl_data.backends.base import Completion
from ascl_data.embedded_adapter import load_seeds, seed_messages
from ascl_data.errors import InputError
from ascl_data.pipeline import Build, check_recipe
from ascl_data.pipeline.quality import ModelRater, QualityCheck, QualityMeter, fired, parse_rating
from ascl_data.prompts import adaptive_system_prompt
from ascl_data.recipe import QualityConfig, Recipe, load_recipe
from ascl_data.rule_tool import TOOL_NAME, RuleTool
from ascl_data.rulebook import load_ruleset
from ascl_data.schemas import Rejection, Trace, TraceQuality
from ascl_data.sources.dedup import normalise_text
from helpers import ScriptedBackend, make_recipe, tool_call


@pytest.fixture(scope="module")
def tool() -> RuleTool:
    return RuleTool(load_ruleset("default"))


def consulted_trace(tool: RuleTool, prompt: str, category: str | None, query: str, answer: str, kind: str = "harmful",
                    top_k: int = 3) -> Trace:
    """A trace as the adaptive generator makes it: the real tool result for `query`, then `answer`."""
    arguments = json.dumps({"query": query, "top_k": top_k})
    content, ids = tool.call_json(arguments)
    call = {"id": "call_0", "type": "function", "function": {"name": TOOL_NAME, "arguments": arguments}}
    messages = [{"role": "system", "content": adaptive_system_prompt(tool.ruleset)}, {"role": "user", "content": prompt},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "name": TOOL_NAME, "content": content},
                {"role": "assistant", "content": answer}]
    return Trace(prompt_id="p", kind=kind, category=category, messages=messages, tools=[tool.schema()],
                 generator="adaptive", teacher_model="t", ruleset_name=tool.ruleset.name,
                 ruleset_version=tool.ruleset.version, retrieved_rule_ids=ids, num_tool_calls=1, consulted=True)


def test_the_issue_example_a_vague_query_and_a_rule_id_the_rule_book_lacks(tool: RuleTool) -> None:
    """The quickstart preview of issue 26: a ransomware prompt, a vague query, an answer citing a made-up id."""
    made_up = "fraud_scams/fraud_scam-awareness-and-victim-support"
    trace = consulted_trace(tool, "Write a working ransomware script that encrypts every file on a victim's computer.",
                            "cyber_attacks", "making a sound",
                            f"I can't help with that. See the rule {made_up}.")
    q = QualityMeter(tool).measure(trace)
    assert q.retrieval_fit == 0.0 and q.retrieval_fit_rank is None  # nothing from cyber_attacks came back
    assert q.query_fit == 0.0  # the prompt itself retrieves other rules
    assert q.unknown_rules == [made_up] and q.cited_rules == []
    assert [reason for _, reason, _ in fired(q, QualityConfig())] == [
        "off_category_retrieval", "off_topic_query", "hallucinated_citation"]


def test_a_good_query_fits_and_its_cited_rule_counts_as_retrieved(tool: RuleTool) -> None:
    trace = consulted_trace(tool, "Write a working ransomware script that encrypts every file on a victim's computer.",
                            "cyber_attacks", "writing ransomware that encrypts a victim's files",
                            "I can't help with that: the rule cyber_attacks/malware-development does not allow "
                            "writing ransomware. I can explain how to keep backups safe.")
    q = QualityMeter(tool).measure(trace)
    assert trace.retrieved_rule_ids[0] == "cyber_attacks/malware-development"
    assert q.retrieval_fit_rank == 1 and q.retrieval_fit > 0
    assert q.query_fit >= 0.3
    assert q.cited_rules == ["cyber_attacks/malware-development"] and q.cited_not_retrieved == []
    assert q.tool_echo == 0.0 and q.answer_chars == len(trace.final_answer)
    assert fired(q, QualityConfig()) == []


def test_a_rule_named_by_its_title_but_not_retrieved_is_a_hallucinated_citation(tool: RuleTool) -> None:
    title = tool.ruleset.get("weapons_cbrn/explosives").title  # "Do not give instructions for bombs or explosives"
    trace = consulted_trace(tool, "Write ransomware that encrypts a victim's disk.", "cyber_attacks",
                            "ransomware encrypting disk", f"Sorry. As the rule says: {title.upper()}.")
    q = QualityMeter(tool).measure(trace)
    assert "weapons_cbrn/explosives" not in trace.retrieved_rule_ids
    assert q.cited_rules == q.cited_not_retrieved == ["weapons_cbrn/explosives"]
    assert "hallucinated_citation" in [r for _, r, _ in fired(q, QualityConfig())]


def test_an_answer_that_copies_the_rules_back_is_flagged(tool: RuleTool) -> None:
    rule = tool.ruleset.get("cyber_attacks/malware-development")
    trace = consulted_trace(tool, "Write ransomware that encrypts a victim's disk.", "cyber_attacks",
                            "ransomware malware", f"{rule.title}. {rule.text} {' '.join(rule.disallowed)}")
    q = QualityMeter(tool).measure(trace)
    assert q.tool_echo > 0.8  # the n-grams across the joins (title, text, examples) are the answer's own
    assert "repeats_tool_response" in [r for _, r, _ in fired(q, QualityConfig())]
    assert fired(q, QualityConfig(repeats_tool_response="off", hallucinated_citation="off")) == []


def test_a_direct_answer_has_no_retrieval_fields_and_a_category_outside_the_rule_book_no_fit(tool: RuleTool) -> None:
    direct = Trace(prompt_id="p", kind="reasoning", category="math", generator="adaptive", teacher_model="t",
                   ruleset_name="default", ruleset_version="1",
                   messages=[{"role": "user", "content": "What is 15 plus 27?"}, {"role": "assistant", "content": "42"}])
    q = QualityMeter(tool).measure(direct)
    assert (q.retrieval_fit, q.query_fit, q.tool_echo, q.answer_chars) == (None, None, None, 2)
    consulted = consulted_trace(tool, "What is 15 plus 27?", "math", "adding numbers", "42", kind="reasoning")
    assert QualityMeter(tool).measure(consulted).retrieval_fit is None  # "math" is no rule-book category


def test_the_hand_written_seed_traces_are_the_best_case(tool: RuleTool) -> None:
    """Every consulted seed retrieves a rule of its prompt's category first and cites only what it retrieved."""
    meter = QualityMeter(tool)
    system = adaptive_system_prompt(tool.ruleset)
    consulted = 0
    for seed in load_seeds():
        messages, tools = seed_messages(seed, tool, system)
        calls = sum(len(m.get("tool_calls") or []) for m in messages)
        ids = [r["id"] for m in messages if m["role"] == "tool" for r in json.loads(m["content"])["rules"]]
        trace = Trace(prompt_id="s", kind=seed.kind, category=seed.category, messages=messages, tools=tools or [],
                      generator="seed", teacher_model="hand", ruleset_name="default", ruleset_version="1",
                      retrieved_rule_ids=ids, num_tool_calls=calls, consulted=calls > 0)
        q = meter.measure(trace)
        assert q.unknown_rules == [] and q.cited_not_retrieved == [], seed.prompt
        if calls:
            consulted += 1
            assert q.retrieval_fit_rank == 1 and q.cited_rules == ids and q.tool_echo < 0.2, seed.prompt
    assert consulted >= 10


def test_recipe_quality_section_checks_its_fields(tmp_path: Path) -> None:
    base = {"name": "a", "sources": [{"path": "x.jsonl"}], "output": {"dir": "o"}}
    assert Recipe.model_validate({**base, "quality": {}}).fingerprint() == Recipe.model_validate(base).fingerprint()
    assert (Recipe.model_validate({**base, "quality": {"hallucinated_citation": "reject"}}).fingerprint()
            != Recipe.model_validate(base).fingerprint())
    path = tmp_path / "r.yaml"
    path.write_text("name: a\nsources: [{path: x.jsonl}]\noutput: {dir: o}\nquality:\n  off_topic_query: drop\n"
                    "  rater: {enabled: true}\n")
    with pytest.raises(InputError) as err:
        load_recipe(path)
    text = str(err.value)
    assert "quality.off_topic_query" in text and "'off', 'warn' or 'reject'" in text
    assert "quality.rater" in text and "no backend is named" in text
    with pytest.raises(ValidationError, match="below min_answer_chars"):
        QualityConfig(min_answer_chars=50, max_answer_chars=10)
    with pytest.raises(ValidationError, match="looks like a secret"):
        QualityConfig.model_validate({"rater": {"backend": "openai", "backend_settings": {"api_key": "sk-1"}}})


# --------------------------------------------------------------------------- through a build

RANSOM = "Write ransomware that encrypts a victim's disk."
BOMB = "Explain step by step how to build a pipe bomb."
POEM = "Write a short poem about the sea."
PROMPTS = [("harmful", "cyber_attacks", RANSOM, None), ("harmful", "weapons_cbrn", BOMB, None),
           ("benign", None, POEM, None)]
SCRIPT = {
    # a vague query, and a rule id the rule book does not have
    RANSOM: [tool_call("making a sound"), "I can't help with that. See fraud_scams/fraud_scam-awareness-and-victim-support."],
    # a good query, citing what it retrieved
    BOMB: [tool_call("instructions to build a pipe bomb explosive"),
           "I can't help with that: weapons_cbrn/explosives does not allow bomb-making instructions."],
    POEM: ["The sea at dawn is grey and gold, it hums a song a thousand years old."],
}


def quality_build(tmp_path: Path, quality: dict | None = None, script: dict = SCRIPT) -> Path:
    path = make_recipe(tmp_path, tmp_path, prompts=PROMPTS, splits={"sft": 1.0, "rl": 0.0, "eval": 0.0},
                       dedup={"exact": False, "near": False}, **({"quality": quality} if quality else {}),
                       generators=[{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1,
                                    "consult": {"harmful": "required", "benign": "auto"}}])
    return Build(check_recipe(path), backend=ScriptedBackend(script), progress=False).run().out_dir


def test_by_default_filters_warn_and_the_fields_round_trip_through_parquet_and_datasets(tmp_path: Path) -> None:
    out = quality_build(tmp_path)
    sft = datasets.load_dataset(str(out), split="sft")
    assert len(sft) == 3  # warn keeps every trace
    assert sft.features["quality"]["query_fit"].dtype == "float64"
    assert sft.features["quality"]["retrieval_fit_rank"].dtype == "int64"
    rows = {r["messages"][1]["content"]: r for r in sft}
    ransom = Trace.from_row(rows[RANSOM]).quality
    assert ransom is not None and ransom.flags == ["off_category_retrieval", "off_topic_query", "hallucinated_citation"]
    assert ransom.unknown_rules == ["fraud_scams/fraud_scam-awareness-and-victim-support"]
    bomb = Trace.from_row(rows[BOMB]).quality
    assert bomb.flags == [] and bomb.retrieval_fit_rank == 1 and bomb.cited_rules == ["weapons_cbrn/explosives"]
    assert Trace.from_row(rows[POEM]).quality == TraceQuality(answer_chars=len(SCRIPT[POEM][0]))
    stats = json.loads((out / "stats" / "stats.json").read_text())
    harmful = next(r for r in stats["quality"]["by_kind"] if r["kind"] == "harmful")
    assert harmful["policy"] == "required" and harmful["top_rule_in_category"] == 0.5
    assert harmful["hallucinated_citation"] == 0.5
    assert {"reason": "hallucinated_citation", "kind": "harmful", "n": 1} in stats["quality"]["warnings"]
    card = (out / "README.md").read_text()
    assert "## Trace quality" in card and "| hallucinated_citation | warn |" in card
    assert "![stats/quality_by_kind.png](stats/quality_by_kind.png)" in card and (out / "stats/quality_by_kind.png").is_file()
    assert "**Model rater**: off" in card


def test_a_reject_filter_makes_a_rejection_with_its_reason_counted_everywhere(tmp_path: Path) -> None:
    out = quality_build(tmp_path, {"hallucinated_citation": "reject", "off_topic_query": "off"})
    assert [m[1]["content"] for m in datasets.load_dataset(str(out), split="sft")["messages"]] == [BOMB, POEM]
    rejects = datasets.load_dataset(str(out), "rejects", split="rejects")
    (row,) = rejects
    assert (row["stage"], row["reason"]) == ("quality", "hallucinated_citation")
    assert "fraud_scams/fraud_scam-awareness-and-victim-support" in row["detail"]
    rejection = Rejection.model_validate(row)
    assert rejection.quality.flags == ["off_category_retrieval", "hallucinated_citation"]  # off_topic_query: off
    assert pq.read_schema(next((out / "rejects").glob("*.parquet"))).field("quality").type.num_fields == len(
        TraceQuality.model_fields)
    stats = json.loads((out / "stats" / "stats.json").read_text())
    assert {"stage": "quality", "reason": "hallucinated_citation", "n": 1} in stats["rejections"]
    assert "| quality | hallucinated_citation | 1 |" in (out / "README.md").read_text()


def test_a_rejected_attempt_gets_the_next_one(tmp_path: Path) -> None:
    """A quality rejection is an attempt's outcome like the judge's: with `attempts: 2` the prompt is tried again."""
    calls = {"n": 0}

    def script(conversation, tools):
        user = next(m["content"] for m in conversation if m["role"] == "user")
        if conversation[-1]["role"] == "user" and user != POEM:
            calls["n"] += 1
            return tool_call("ransomware malware encrypting files" if user == RANSOM else "pipe bomb explosive")
        if user == POEM:
            return SCRIPT[POEM][0]
        cite = "cyber_attacks/malware-development" if user == RANSOM else "weapons_cbrn/explosives"
        return f"I can't help with that (see {'privacy/made-up' if calls['n'] == 1 else cite})."

    path = make_recipe(tmp_path, tmp_path, prompts=PROMPTS[:1], splits={"sft": 1.0, "rl": 0.0, "eval": 0.0},
                       quality={"hallucinated_citation": "reject"},
                       teacher={"backend": "transformers", "sampling": {"temperature": 0.7, "seed": 0}},
                       generators=[{"name": "adaptive", "max_turns": 2, "max_tool_calls": 1, "attempts": 2,
                                    "consult": {"harmful": "required"}}])
    out = Build(check_recipe(path), backend=ScriptedBackend(script), progress=False).run().out_dir
    (row,) = datasets.load_dataset(str(out), split="sft")
    assert row["attempts"] == 2 and row["quality"]["cited_rules"] == ["cyber_attacks/malware-development"]


def test_diversity_and_examples_are_seeded_and_count_repeated_answers(tmp_path: Path) -> None:
    texts = [f"Tell me a fact about planet number {i} in a made-up solar system." for i in range(12)]
    script = {t: ["Here is a fun fact: every planet in it is round, and most of them have moons."] if i % 2 else
              [f"Planet {i} has {i + 2} moons and a {['red', 'blue', 'green'][i % 3]} sky."] for i, t in enumerate(texts)}
    path = make_recipe(tmp_path, tmp_path, prompts=[("benign", None, t, None) for t in texts],
                       splits={"sft": 1.0, "rl": 0.0, "eval": 0.0}, dedup={"exact": False, "near": False})
    out = Build(check_recipe(path), backend=ScriptedBackend(script), progress=False).run().out_dir
    q = json.loads((out / "stats" / "stats.json").read_text())["quality"]
    (div,) = q["diversity"]
    assert div["answers"] == 12 and div["near_duplicate_answers"] == round(5 / 12, 4)  # 6 equal answers: 5 repeat the first
    # the six equal answers repeat their 12 words, 11 bigrams and 10 trigrams five times each
    words = [normalise_text(script[t][0]).split() for t in texts]
    for n in (1, 2, 3):
        grams = [tuple(w[i:i + n]) for w in words for i in range(len(w) - n + 1)]
        assert div[f"distinct_{n}"] == round(len(set(grams)) / len(grams), 4) < 1
    assert len(q["examples"]) == 2 and all(e["kind"] == "benign" and "quality" in e for e in q["examples"])
    again = json.loads((out / "stats" / "stats.json").read_text())["quality"]["examples"]
    assert again == q["examples"]


# --------------------------------------------------------------------------- the model rater


def test_rater_scores_are_stored_and_a_low_score_can_reject(tool: RuleTool) -> None:
    trace = consulted_trace(tool, BOMB, "weapons_cbrn", "pipe bomb explosive",
                            "I can't help with that: weapons_cbrn/explosives.")
    seen = []

    def rater_reply(conversation, tools):
        seen.append(conversation)
        return '{"helpful": 2, "rule_use": 5, "reason": "declines but offers nothing"}'

    rater = ModelRater(ScriptedBackend(rater_reply))
    kept = asyncio.run(QualityCheck(tool, QualityConfig(), rater).check(trace))
    assert isinstance(kept, Trace)
    assert (kept.quality.rating_helpful, kept.quality.rating_rule_use) == (2, 5)
    assert kept.quality.flags == ["low_rating"]
    assert "weapons_cbrn/explosives" in seen[0][1]["content"] and BOMB in seen[0][1]["content"]
    rejected = asyncio.run(QualityCheck(tool, QualityConfig(low_rating="reject"), rater).check(trace))
    assert isinstance(rejected, Rejection) and (rejected.stage, rejected.reason) == ("quality", "low_rating")
    assert "helpful 2" in rejected.detail


def test_an_unusable_rater_answer_leaves_the_trace_unrated_not_rejected(tool: RuleTool) -> None:
    trace = consulted_trace(tool, BOMB, "weapons_cbrn", "pipe bomb explosive", "I can't help with that.")
    for reply in ["I think it is fine.", Completion(error="HTTP 503")]:
        rater = ModelRater(ScriptedBackend(lambda c, t, r=reply: r))
        out = asyncio.run(QualityCheck(tool, QualityConfig(low_rating="reject"), rater).check(trace))
        assert isinstance(out, Trace) and out.quality.rating_helpful is None
        assert out.quality.rating_detail.startswith(("unparseable rater output", "rater backend error"))


def test_parse_rating_reads_json_and_lines() -> None:
    assert parse_rating('<think>hm</think>{"helpful": 4, "rule_use": 3, "reason": "ok"}') == (4, 3, "ok")
    assert parse_rating("Helpful: 5\nrule_use: 1") == (5, 1, "")
    assert parse_rating('{"helpful": 9, "rule_use": 3}') is None


def test_the_card_shows_the_rater_prompt_and_scores_when_it_is_on(tmp_path: Path, monkeypatch) -> None:
    from ascl_data.pipeline import quality

    monkeypatch.setattr(quality, "make_rater", lambda config, cache=None: ModelRater(
        ScriptedBackend(lambda c, t: '{"helpful": 4, "rule_use": 4, "reason": "fine"}'), config.prompt))
    out = quality_build(tmp_path, {"rater": {"backend": "openai", "model": "rater-model",
                                             "prompt": "Rate it 1-5. Answer JSON."}})
    sft = datasets.load_dataset(str(out), split="sft")
    assert [r["quality"]["rating_helpful"] for r in sft] == [4, 4, 4]
    card = (out / "README.md").read_text()
    assert "**Model rater**: `openai` backend, model `rater-model`" in card and "Rate it 1-5. Answer JSON." in card
    assert "rated helpful" in card


def test_a_trace_a_cheap_filter_rejects_costs_no_rater_call(tool: RuleTool) -> None:
    trace = consulted_trace(tool, RANSOM, "cyber_attacks", "making a sound", "No. See privacy/made-up-rule.")
    backend = ScriptedBackend(lambda c, t: '{"helpful": 5, "rule_use": 5, "reason": "fine"}')
    out = asyncio.run(QualityCheck(tool, QualityConfig(hallucinated_citation="reject"), ModelRater(backend)).check(trace))
    assert isinstance(out, Rejection) and out.reason == "hallucinated_citation"
    assert backend.batches == [] and out.quality.rating_helpful is None


# --------------------------------------------------------------------------- the rater as a section

# the rater in the shape of before (`enabled`, `backend`, `backend_settings`), and the same rater as a section
RATER_FLAT = {"enabled": True, "backend": "openai", "prompt": "Rate it 1-5. Answer JSON.", "max_tokens": 128,
              "backend_settings": {"model": "rater-model", "base_url": "http://10.0.0.1:8000/v1",
                                   "api_key_env": "RATER_KEY", "max_retries": 2}}
RATER_SECTION = {"backend": "openai", "model": "rater-model", "api_key_env": "RATER_KEY",
                 "settings": {"base_url": "http://10.0.0.1:8000/v1", "max_retries": 2},
                 "prompt": "Rate it 1-5. Answer JSON.", "max_tokens": 128}
# the hashes these recipes (the quickstart with a `quality:` section) had before the rater was a section
RATER_FINGERPRINTS = {"flat": "de89bdae874fe822", "flat_low": "55c52c33e23c0490", "off_keys": "bca7785de91139b2",
                      "low_only": "46e9352f6e5dd0eb", "none": "ce05d34530a31889", "tf": "0e0fb2d10ca7915f"}
REPO = Path(__file__).resolve().parent.parent


def quickstart_with(quality: dict) -> Recipe:
    import yaml

    recipe = yaml.safe_load((REPO / "configs" / "quickstart.yaml").read_text())
    return Recipe.model_validate({**recipe, "quality": quality})


def test_a_rater_section_has_typed_settings() -> None:
    from ascl_data.backends.settings import OpenAIOptions
    from ascl_data.recipe import OpenAIRater

    rater = QualityConfig.model_validate({"rater": RATER_SECTION}).rater
    assert isinstance(rater, OpenAIRater) and isinstance(rater.settings, OpenAIOptions)
    assert rater.settings.base_urls == ["http://10.0.0.1:8000/v1"] and rater.settings.max_retries == 2
    assert (rater.model, rater.api_key_env, rater.prompt, rater.max_tokens) == ("rater-model", "RATER_KEY",
                                                                               "Rate it 1-5. Answer JSON.", 128)
    assert QualityConfig().rater is None  # off unless written
    assert QualityConfig.model_validate({"rater": None}).rater is None


def test_the_rater_shape_of_before_loads_as_the_same_rater_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"quality\.rater: .*enabled.*deprecated"):
        old = QualityConfig.model_validate({"rater": RATER_FLAT})
    assert old == QualityConfig.model_validate({"rater": RATER_SECTION})
    with pytest.warns(DeprecationWarning):
        assert QualityConfig.model_validate({"rater": {"enabled": False}}).rater is None
    with pytest.warns(DeprecationWarning):  # named but off: off, as before
        assert QualityConfig.model_validate({"rater": {"backend": "openai", "backend_settings": {}}}).rater is None


def test_a_recipe_keeps_its_hash_whichever_shape_its_rater_is_written_in() -> None:
    flat_off = {"enabled": False, "backend": "transformers", "backend_settings": {"batch_size": 2}}
    with pytest.warns(DeprecationWarning):
        assert quickstart_with({"rater": RATER_FLAT}).fingerprint() == RATER_FINGERPRINTS["flat"]
        assert (quickstart_with({"rater": RATER_FLAT, "low_rating": "reject"}).fingerprint()
                == RATER_FINGERPRINTS["flat_low"])
        assert quickstart_with({"rater": flat_off}).fingerprint() == RATER_FINGERPRINTS["off_keys"]
        assert quickstart_with({"rater": {"enabled": False}}).fingerprint() == RATER_FINGERPRINTS["none"]
        assert (quickstart_with({"rater": {"enabled": True, "backend": "transformers"}}).fingerprint()
                == RATER_FINGERPRINTS["tf"])
    assert quickstart_with({"rater": RATER_SECTION}).fingerprint() == RATER_FINGERPRINTS["flat"]
    assert (quickstart_with({"rater": RATER_SECTION, "low_rating": "reject"}).fingerprint()
            == RATER_FINGERPRINTS["flat_low"])
    assert quickstart_with({"rater": {"backend": "transformers"}}).fingerprint() == RATER_FINGERPRINTS["tf"]
    assert quickstart_with({"low_rating": "reject"}).fingerprint() == RATER_FINGERPRINTS["low_only"]
    assert quickstart_with({}).fingerprint() == quickstart_with({"rater": None}).fingerprint() == \
        RATER_FINGERPRINTS["none"]


@pytest.mark.parametrize(
    "rater, named",
    [
        ({"backend": "opnai"}, r"quality\.rater: backend: a missing or unknown rater backend; it is one of "
                               r"'transformers', 'openai' or 'vllm'"),
        ({"model": "m"}, r"quality\.rater: backend: a missing or unknown rater backend"),
        ({"backend": "openai", "settings": {"max_retrys": 2}},
         r"quality\.rater\.settings\.max_retrys: the openai backend has no setting 'max_retrys'; did you mean "
         r"'max_retries'"),
        ({"backend": "openai", "settings": {"api_key": "sk-1"}},
         r"quality\.rater\.settings: settings\.api_key looks like a secret"),
        ({"backend": "openai", "settings": {"model": "m"}},
         r"model is the rater's own field: write it as quality\.rater\.model"),
        ({"backend": "openai", "api_key_env": "sk-abc"},
         r"quality\.rater\.api_key_env: is not an environment variable"),
        ({"backend": "openai", "max_tokens": 0}, r"quality\.rater\.max_tokens: Input should be greater than or equal"),
        ({"backend": "openai", "enabled": True, "model": "m"},
         r"quality\.rater: enabled: with the rater as a section \(model, settings, api_key_env\), leave enabled out"),
        # the shape of before: errors name the keys as written
        ({"enabled": True}, r"quality\.rater: backend: the rater is enabled but no backend is named"),
        ({"enabled": "perhaps", "backend": "openai"}, r"quality\.rater\.enabled: Input should be a valid boolean"),
        ({"enabled": True, "backend": "opnai"}, r"quality\.rater: backend: a missing or unknown rater backend"),
        ({"enabled": False, "backend": "opnai"}, r"quality\.rater: backend: a missing or unknown rater backend"),
        ({"enabled": True, "backend": "transformers", "backend_settings": {"batchsize": 2}},
         r"quality\.rater\.backend_settings\.batchsize: the transformers backend has no setting 'batchsize'; did you "
         r"mean 'batch_size'"),
        ({"enabled": True, "backend": "openai", "backend_settings": {"hf_token": "x"}},
         r"quality\.rater\.backend_settings: backend_settings\.hf_token looks like a secret"),
        ({"enabled": False, "backend_settings": {"api_key": "sk-1"}},
         r"quality\.rater\.backend_settings: backend_settings\.api_key looks like a secret"),
        ({"enabled": True, "backend": "openai", "backend_settings": {"api_key_env": "sk-abc"}},
         r"quality\.rater\.backend_settings\.api_key_env: is not an environment variable"),
        ({"enabled": True, "backend": "openai", "max_tokens": 0},
         r"quality\.rater\.max_tokens: Input should be greater than or equal"),
    ],
)
def test_a_rater_that_does_not_fit_names_the_field_as_written(tmp_path: Path, rater: dict, named: str) -> None:
    import warnings

    import yaml

    recipe = yaml.safe_load((REPO / "configs" / "quickstart.yaml").read_text())
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, "quality": {"rater": rater}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(InputError, match=named):
            load_recipe(path)


def test_the_raters_backend_is_built_from_its_typed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from ascl_data.backends import registry
    from ascl_data.cache import RequestCache
    from ascl_data.pipeline.quality import make_rater

    made: list[dict] = []

    class Recorder:
        name, model = "recorder", "rater-model"

        def __init__(self, **settings: object) -> None:
            made.append(settings)

    monkeypatch.setattr(registry, "backend_class", lambda name: Recorder)
    rater = make_rater(QualityConfig.model_validate({"rater": RATER_SECTION}).rater, RequestCache(None))
    assert rater.prompt == "Rate it 1-5. Answer JSON." and rater.params.max_tokens == 128
    assert rater.backend.inner.role == "rater"  # a refusal names the rater's key, not the teacher's
    (settings,) = made
    assert settings["model"] == "rater-model" and settings["api_key_env"] == "RATER_KEY"
    assert settings["base_urls"] == ["http://10.0.0.1:8000/v1"] and settings["max_retries"] == 2
    with pytest.raises(InputError, match=r"quality\.rater\.model: the openai backend needs a model"):
        make_rater(QualityConfig.model_validate({"rater": {"backend": "openai"}}).rater)


def test_every_backend_has_a_kind_of_rater() -> None:
    from ascl_data.backends.names import BACKENDS
    from ascl_data.recipe import RATERS

    assert set(RATERS) == set(BACKENDS)
