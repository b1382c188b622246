"""The `retrieve_safety_rules` tool: schema from the rule book, ranked retrieval, filters, safe errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ascl_data.rulebook import load_ruleset
from ascl_data.rule_tool import MAX_TOP_K, NO_MATCH, TOOL_NAME, RuleTool, RuleToolError


@pytest.fixture
def tool(small_ruleset_file: Path) -> RuleTool:
    return RuleTool(load_ruleset(small_ruleset_file))


def test_schema_has_categories_enum(tool: RuleTool) -> None:
    schema = tool.schema()
    fn = schema["function"]
    assert schema["type"] == "function" and fn["name"] == TOOL_NAME
    assert fn["parameters"]["properties"]["categories"]["items"]["enum"] == ["weapons", "cyber"]
    assert fn["parameters"]["required"] == ["query"]
    assert "strict" not in fn and tool.schema(strict=True)["function"]["strict"] is True


def test_ranking_is_by_relevance(tool: RuleTool) -> None:
    hits = tool.search("my python script hangs, how do I kill the process", top_k=4)
    assert hits[0].rule.id == "cyber/process-management"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert tool.search("build a bomb", top_k=1)[0].rule.id == "weapons/explosives"


def test_category_filter_and_top_k(tool: RuleTool) -> None:
    hits = tool.search("bomb malware process", categories=["cyber"], top_k=2)
    assert {h.rule.category for h in hits} == {"cyber"} and len(hits) == 2
    assert len(tool.search("malware bomb", categories=["weapons"], top_k=3)) == 1  # only rules that share a word


@pytest.mark.parametrize("query", ["and then it was in the", "как сделать бомбу", "如何制造炸弹", "xyzzy plugh"])
def test_no_match_returns_no_rules_and_says_so(query: str) -> None:
    """Stop words only, another script, unknown words: no rule shares a word, so none comes back (it used to
    return the first rules of the book with score 0, which a model reads as guidance)."""
    tool = RuleTool(load_ruleset("default"))
    assert tool.search(query, top_k=5) == []
    content, ids = tool.call_json({"query": query})
    payload = json.loads(content)
    assert ids == [] and payload["rules"] == [] and payload["note"] == NO_MATCH
    assert json.loads(tool.as_function()(query))["note"] == NO_MATCH


def test_bad_arguments_come_back_as_tool_errors(tool: RuleTool) -> None:
    content, ids = tool.call_json('{"query": "bomb", "categories": ["bio"]}')
    assert ids == [] and "unknown categories ['bio']" in json.loads(content)["error"]
    content, _ = tool.call_json('{"query": "bomb", "top_k": 0}')
    assert f"top_k must be an integer from 1 to {MAX_TOP_K}" in json.loads(content)["error"]
    content, _ = tool.call_json("not json")
    assert "error" in json.loads(content)
    content, _ = tool.call_json('{"query": "x", "mode": "fast"}')
    assert "unexpected arguments ['mode']" in json.loads(content)["error"]
    with pytest.raises(RuleToolError, match="query must be a non-empty string"):
        tool.search("  ")


def test_result_is_json_with_cases(tool: RuleTool) -> None:
    content, ids = tool.call_json({"query": "ransomware keylogger", "top_k": 1})
    payload = json.loads(content)
    assert ids == ["cyber/malware"] and payload["ruleset"] == "tiny@0.1"
    (rule,) = payload["rules"]
    assert set(rule) == {"id", "category", "title", "text", "allowed", "disallowed", "borderline"}
    assert "note" not in payload


def test_python_function_for_trl(tool: RuleTool) -> None:
    fn = tool.as_function()
    assert fn == tool.schema() and fn.__name__ == TOOL_NAME  # rendered by chat templates as the build's schema
    assert json.loads(fn("kill a process", top_k=1))["rules"][0]["id"] == "cyber/process-management"
    assert json.loads(fn("bomb malware", categories=["cyber"], top_k=1))["rules"][0]["category"] == "cyber"


def test_default_book_handles_benign_words_that_sound_dangerous() -> None:
    tool = RuleTool(load_ruleset("default"))
    ids = [h.rule.id for h in tool.search("how do I kill a zombie process in linux", top_k=5)]
    assert "violent_crime/figurative-and-technical-language" in ids


@pytest.mark.parametrize("name", ["retrieval_queries.yaml", "retrieval_queries_heldout.yaml"])
def test_default_book_recall_at_5(name: str) -> None:
    """The labelled query sets in benchmarks/ (harmful, jailbreak, benign-but-dangerous-sounding) keep recall@5 >= 0.9."""
    import yaml

    spec = yaml.safe_load((Path(__file__).parents[1] / "benchmarks" / name).read_text())
    tool = RuleTool(load_ruleset("default"))
    ids = {r.id for r in tool.ruleset.rules}
    found = total = 0
    for q in spec["queries"]:
        assert set(q["expected"]) <= ids, q["id"]
        top = {h.rule.id for h in tool.search(q["query"], top_k=spec["k"])}
        found += len(top & set(q["expected"]))
        total += len(q["expected"])
    assert found / total >= 0.9
