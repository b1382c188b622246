"""Rule books: the shipped ones meet the bar; broken ones fail loudly naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ascl_data.errors import InputError
from ascl_data.rulebook import builtin_rulesets, load_ruleset
from tests.conftest import small_ruleset_dict


def test_default_rule_book_is_complete() -> None:
    book = load_ruleset("default")
    assert len(book.categories) >= 12
    assert len(book.rules) >= 80
    assert book.license and book.sources, "the header names its licence and the public policies it draws on"
    per_category = {c: sum(r.category == c for r in book.rules) for c in book.category_ids}
    assert min(per_category.values()) >= 3, per_category
    for rule in book.rules:
        assert rule.allowed and rule.disallowed and rule.borderline, rule.id
        for case in rule.borderline:
            assert len(case.allowed.split()) >= 4, f"{rule.id}: a borderline case must say what IS allowed"


def test_compact_rule_book_covers_the_same_categories() -> None:
    default, compact = load_ruleset("default"), load_ruleset("compact")
    assert set(compact.category_ids) == set(default.category_ids)
    assert len(compact.rules) < len(default.rules)
    assert {"default", "compact"} <= set(builtin_rulesets())


def test_users_own_rule_book(small_ruleset_file: Path) -> None:
    book = load_ruleset(small_ruleset_file)
    assert book.name == "tiny" and [c.id for c in book.categories] == ["weapons", "cyber"]


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_ruleset(path)
    return [str(p) for p in info.value.problems]


def line_of(path: Path, text: str, nth: int = 1) -> int:
    """The 1-based line of the nth line of `path` that contains `text`."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return hits[nth - 1]


def test_duplicate_rule_ids_name_the_duplicates_line(tmp_path: Path) -> None:
    """Cross-rule errors used to point at line 1 whatever the file held."""
    data = small_ruleset_dict()
    data["rules"][1]["id"] = "weapons/explosives"
    path = write(tmp_path, data)
    (msg,) = problems(path)
    line = line_of(path, "id: weapons/explosives", nth=2)
    assert line > 1
    assert msg == f"{path}:{line}: rules.1.id: duplicate rule id 'weapons/explosives' (first at rules[0])"


def test_unknown_and_duplicate_categories_name_their_lines(tmp_path: Path) -> None:
    data = small_ruleset_dict()
    data["rules"][2]["category"] = "bio"
    data["rules"][2]["id"] = "bio/malware"
    data["categories"].append(dict(data["categories"][1]))
    path = write(tmp_path, data)
    msgs = problems(path)
    assert f"{path}:{line_of(path, 'category: bio')}: rules.2.category: unknown category 'bio'" in msgs[1]
    assert msgs[0] == f"{path}:{line_of(path, 'id: cyber', nth=2)}: categories.2.id: duplicate category id 'cyber'"


def test_empty_text_names_line_and_field(tmp_path: Path) -> None:
    data = small_ruleset_dict()
    data["rules"][3]["text"] = "   "
    path = write(tmp_path, data)
    (msg,) = problems(path)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if l.strip().startswith("text: '   '"))
    assert msg.startswith(f"{path}:{line}: rules.3.text:")
    assert "text must not be empty" in msg


def test_missing_cases_and_bad_id(tmp_path: Path) -> None:
    data = small_ruleset_dict()
    data["rules"][0]["borderline"] = []
    data["rules"][1]["id"] = "Weapons Safety"
    msgs = problems(write(tmp_path, data))
    assert any("rules.0.borderline" in m and "at least 1 item" in m for m in msgs)
    assert any("rules.1.id" in m and "is not of the form '<category>/<kebab-slug>'" in m for m in msgs)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules: [unclosed\n")
    (msg,) = problems(bad)
    assert "not valid YAML" in msg and str(bad) in msg
    with pytest.raises(FileNotFoundError, match="not a file, and not one of the shipped ones"):
        load_ruleset("no-such-book")
