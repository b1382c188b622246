"""One parser for every `key=value` option, and `ascl-data eval` reads its options without importing TRL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ascl_data.errors import InputError
from ascl_data.overrides import parse_overrides


def test_values_are_yaml_and_dotted_keys_nest() -> None:
    assert parse_overrides(["base_url=http://h:8000/v1", "max_concurrency=8", "extra.top_k=5", "extra.x=true"],
                           "--backend-setting") == {"base_url": "http://h:8000/v1", "max_concurrency": 8,
                                                    "extra": {"top_k": 5, "x": True}}


@pytest.mark.parametrize("item", ["base_url", "=x", "key=", "key=  ", "a=[unclosed"])
def test_a_bad_item_names_the_option_and_the_item(item: str) -> None:
    with pytest.raises(InputError) as err:
        parse_overrides([item], "--judge-setting")
    assert "--judge-setting" in str(err.value) and item.strip() in str(err.value)


def test_eval_command_does_not_import_trl() -> None:
    code = ("import sys, ascl_data.commands.eval, ascl_data.evaluation, ascl_data.evaluation.run; "
            "print('trl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
