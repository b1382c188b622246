"""The dataset's licence is carried from its sources, not assumed (issue 25, item 4).

The card's licence is the one licence that covers every source's and the rule book's (the most restrictive), or
`other` naming each where none does; a licence the recipe states is kept, with a warning where it is looser than a
source's; the card lists every source with its licence and revision.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml
from huggingface_hub import DatasetCard

from ascl_data.pipeline import Build, check_recipe
from ascl_data.pipeline.card import dataset_licence
from ascl_data.recipe import CardConfig
from ascl_data.rulebook import load_ruleset
from ascl_data.sources.adapters import ADAPTERS
from ascl_data.sources.source import SourceInfo
from helpers import ScriptedBackend, make_recipe

BOOK = load_ruleset("compact")  # CC-BY-4.0


def source(name: str, licence: str | None) -> SourceInfo:
    return SourceInfo(name, f"org/{name}", None, "train", "abc123", licence, None)


def test_the_adapters_know_the_licences_of_their_datasets():
    assert ADAPTERS["beavertails"].license == ADAPTERS["pku_saferlhf"].license == "cc-by-nc-4.0"
    assert ADAPTERS["wildjailbreak"].license == "odc-by" and ADAPTERS["gsm8k"].license == "mit"
    assert all(a.license for a in ADAPTERS.values())


@pytest.mark.parametrize("licences, expected, name", [
    (["cc-by-nc-4.0", "cc-by-4.0", "mit"], "cc-by-nc-4.0", None),  # the most restrictive covers the others
    (["cc0-1.0"], "cc-by-4.0", None),  # the rule book's rules are in the traces
    (["cc-by-sa-4.0"], "cc-by-sa-4.0", None),  # share-alike: the rule book's cc-by goes under it
    (["cc-by-sa-4.0", "cc-by-nc-4.0"], "other", "cc-by-sa-4.0 + cc-by-nc-4.0 + cc-by-4.0"),  # none covers both
    (["mit", "llama3"], "other", "mit + llama3 + cc-by-4.0"),  # a licence the table cannot compare
    (["mit"], "other", "mit + cc-by-4.0"),  # same terms, other ids: each named, none chosen for the other
])
def test_the_licence_is_derived_from_the_sources(licences, expected, name):
    licence = dataset_licence(CardConfig(), [source(f"s{i}", lic) for i, lic in enumerate(licences)], BOOK)
    assert (licence.license, licence.license_name, licence.stated) == (expected, name, False)
    assert licence.warning() is None
    assert [i["license"] for i in licence.inputs] == [*licences, "cc-by-4.0"]


def test_a_stated_licence_is_kept_and_a_looser_one_warned_about():
    sources = [source("beavertails", "cc-by-nc-4.0"), source("mine", None), source("xstest", "cc-by-4.0")]
    licence = dataset_licence(CardConfig(license="apache-2.0"), sources, BOOK)
    assert licence.license == "apache-2.0" and licence.stated and licence.derived == "cc-by-nc-4.0"
    assert licence.unstated == ["mine"]
    assert licence.looser_than == [{"name": "source beavertails", "license": "cc-by-nc-4.0"}]
    assert licence.warning().startswith("card.license apache-2.0 is looser than the licence of source beavertails "
                                        "(cc-by-nc-4.0)") and "Set card.license to cc-by-nc-4.0" in licence.warning()
    # as strict or stricter, or the same terms under another id: no warning
    for stated in ("cc-by-nc-4.0", "cc-by-nc-sa-4.0"):
        assert dataset_licence(CardConfig(license=stated), sources, BOOK).warning() is None
    assert dataset_licence(CardConfig(license="apache-2.0"), [source("q", "apache-2.0")], BOOK).warning() is None
    # a share-alike source shares alike only under its own licence
    assert dataset_licence(CardConfig(license="cc-by-nc-sa-4.0"), [source("w", "cc-by-sa-4.0")], BOOK).looser_than


def _build(tmp_path: Path, sources: list[dict], card: dict) -> tuple[Path, list[str]]:
    prompts = tmp_path / "p.jsonl"
    recipe = make_recipe(tmp_path, tmp_path, prompts=[("benign", None, "Say hello.", None)],
                         splits={"sft": 1.0, "rl": 0.0, "eval": 0.0}, dedup={"exact": False, "near": False},
                         sources=sources, card=card, ruleset="compact",
                         teacher={"backend": "transformers", "sampling": {"temperature": 0.0, "max_tokens": 8}})
    data = yaml.safe_load(recipe.read_text())
    for s in data["sources"]:
        prompts.write_text(json.dumps({"prompt": f"Say hello to {s['name']}.", "kind": "benign"}) + "\n")
        Path(tmp_path / f"{s['name']}.jsonl").write_text(prompts.read_text())
        s["path"] = f"{s['name']}.jsonl"
    recipe.write_text(yaml.safe_dump(data))
    backend = ScriptedBackend(lambda conversation, tools: "Hello.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Build(check_recipe(recipe), backend=backend, progress=False).run()
    return tmp_path / "out", [str(w.message) for w in caught if "card.license" in str(w.message)]


def test_the_card_carries_the_derived_licence_and_lists_every_source(tmp_path):
    out, warned = _build(tmp_path, [{"name": "harmful", "license": "cc-by-nc-4.0"}, {"name": "mine"}], {})
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and not warned
    assert "| harmful | harmful.jsonl |  |  | local file | cc-by-nc-4.0 |" in card.text
    assert "| mine | mine.jsonl |  |  | local file | not stated |" in card.text
    assert f"| rule book | {BOOK.name} | | | {BOOK.version} (`{BOOK.fingerprint()}`) | CC-BY-4.0 |" in card.text
    assert "derived from the sources and the rule book" in card.text
    assert "Sources that state no licence, whose owners' terms apply: mine." in card.text


def test_a_build_whose_stated_licence_is_looser_warns_and_says_so_in_the_card(tmp_path):
    out, warned = _build(tmp_path, [{"name": "harmful", "license": "cc-by-nc-4.0"}], {"license": "apache-2.0"})
    assert len(warned) == 1 and "source harmful (cc-by-nc-4.0)" in warned[0]
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "apache-2.0"
    assert "It is looser than the licence of\nsource harmful (`cc-by-nc-4.0`)" in card.text


def test_sources_no_one_licence_covers_make_it_other_with_each_named(tmp_path):
    out, _ = _build(tmp_path, [{"name": "a", "license": "cc-by-sa-4.0"}, {"name": "b", "license": "cc-by-nc-4.0"}], {})
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "other" and card.data.license_name == "cc-by-sa-4.0 + cc-by-nc-4.0 + cc-by-4.0"
    assert "no one licence covers those of the\nsources and the rule book" in card.text
