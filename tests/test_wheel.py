"""The wheel carries its rule books and card templates: install it into a fresh venv, use it from elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_from_another_folder(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = dist.glob("ascl_data-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # Dependencies come from this test environment's site-packages (added as a plain path, so the editable
    # install of the source tree there stays inactive); the package itself only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "import json, ascl_data, ascl_data.rulesets, ascl_data.cards\n"
        "from importlib import resources\n"
        "from ascl_data.rulebook import load_ruleset\n"
        "book = load_ruleset('default'); compact = load_ruleset('compact')\n"
        "cards = [p.name for p in resources.files('ascl_data.cards').iterdir()]\n"
        "import importlib, pkgutil\n"
        "failed = {}\n"
        "for m in pkgutil.walk_packages(ascl_data.__path__, 'ascl_data.'):\n"
        "    if m.name.endswith('__main__'): continue\n"
        "    try: importlib.import_module(m.name)\n"
        "    except Exception as e:\n"
        "        if getattr(e, 'name', None) != 'vllm': failed[m.name] = repr(e)\n"
        "modules = sorted(m.name for m in pkgutil.walk_packages(ascl_data.__path__, 'ascl_data.'))\n"
        "api = [getattr(ascl_data, n).__name__ for n in ascl_data.__all__ if n != '__version__']\n"
        "print(json.dumps({'pkg': ascl_data.__file__, 'rules': len(book.rules), 'compact': len(compact.rules), 'cards': cards,\n"
        "                  'failed': failed, 'modules': modules, 'api': api}))\n"
    )
    out = subprocess.run([py, "-c", code], cwd=elsewhere, env=env, check=True, capture_output=True, text=True)
    info = json.loads(out.stdout)
    assert info["pkg"].startswith(str(site)), "imported the wheel, not the source tree"
    assert info["rules"] >= 80 and info["compact"] > 0
    assert any(name.endswith(".jinja") for name in info["cards"]), info["cards"]
    assert "hub_metadata.yaml" in info["cards"], info["cards"]  # `build --check` reads the Hub's values from it
    assert info["failed"] == {}, info["failed"]  # every module of the wheel imports from the installed wheel
    for module in ("ascl_data.pipeline.job", "ascl_data.pipeline.plan", "ascl_data.pipeline.layout", "ascl_data.sources.stream",
                   "ascl_data.judge.factory", "ascl_data.generators.adaptive"):
        assert module in info["modules"], f"{module} is missing from the wheel"
    assert "Build" in info["api"] and "load_recipe" in info["api"]
    cli = subprocess.run([py, "-m", "ascl_data", "rules", "search", "kill a process", "--json"],
                         cwd=elsewhere, env=env, check=True, capture_output=True, text=True)
    assert json.loads(cli.stdout)[0]["id"]
