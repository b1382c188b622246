"""The card names what shaped the teacher's answers: the embedded model's seed adapter, when it is merged in."""

from __future__ import annotations

from pathlib import Path

from ascl_data.embedded_adapter import adapter_description
from ascl_data.pipeline import Build
from ascl_data.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_card_names_the_seed_adapter() -> None:
    recipe = load_recipe(ROOT / "configs" / "quickstart.yaml")
    note = Build(recipe)._teacher_adapter()
    assert note is not None and "seed adapter" in note and "40 hand-written seed traces" in note
    assert "rank-16 LoRA on the top 6 layers" in note


def test_no_adapter_note_for_the_bare_model_or_another_teacher() -> None:
    recipe = load_recipe(ROOT / "configs" / "quickstart.yaml")
    bare = recipe.model_copy(deep=True)
    bare.teacher.settings.seed_adapter = False
    assert Build(bare)._teacher_adapter() is None
    other = recipe.model_copy(deep=True)
    other.teacher.model = "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert Build(other)._teacher_adapter() is None


def test_template_renders_the_adapter() -> None:
    text = (ROOT / "cards" / "dataset_card.md.jinja").read_text()
    assert "{% if teacher.adapter %} with {{ teacher.adapter }}{% endif %}" in text
    assert adapter_description().startswith("the package's seed adapter merged in")
