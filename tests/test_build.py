"""`ascl-data build` end to end with a real (tiny, random) model behind the transformers backend: the folder loads
with `datasets.load_dataset`, the SFT split templates and tokenizes with SmolLM2's tokenizer and TRL's SFTTrainer,
and every prompt in ends as an accepted row or a rejection."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ascl_data.backends.base import Completion
from ascl_data.pipeline import Build, check_recipe
from ascl_data.cli import app
from ascl_data.errors import FatalError
from ascl_data.testing.fault_proxy import Answer, ScriptedServer, chat_answer
from helpers import BUILD_PROMPTS, ScriptedBackend, make_recipe

PROMPTS = BUILD_PROMPTS


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("build")
    result = CliRunner().invoke(app, ["build", str(make_recipe(tmp, tiny_model_dir)), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return tmp / "out"


def test_every_prompt_is_accounted_for(built: Path) -> None:
    stats = json.loads((built / "stats" / "stats.json").read_text())
    rows = stats["rows"]
    assert rows["sft"] + rows["rl"] + rows["eval"] + rows["rejects"] == len(PROMPTS)
    rejects = datasets.load_dataset(str(built), "rejects", split="rejects")
    assert "duplicate" in rejects["reason"]
    assert all(r["detail"] and r["stage"] for r in rejects)
    ids = set(rejects["prompt_id"])
    for split in ("sft",):
        ids |= set(datasets.load_dataset(str(built), split=split)["prompt_id"]) if rows[split] else set()
    prompts = datasets.load_dataset(str(built), "rl")
    ids |= set(prompts["rl"]["prompt_id"]) | set(prompts["eval"]["prompt_id"]) if "eval" in prompts else set(prompts["rl"]["prompt_id"])
    assert len(ids) == len(PROMPTS) - 1  # the duplicate shares its id with the first copy


def test_sft_split_templates_with_smollm2_tokenizer(built: Path, smollm_tokenizer) -> None:
    sft = datasets.load_dataset(str(built), split="sft")
    assert len(sft) > 0
    assert {"messages", "tools", "kind", "verdict", "consulted", "judge"} <= set(sft.column_names)
    for row in sft:
        tools = json.loads(row["tools"])
        assert tools[0]["function"]["name"] == "retrieve_safety_rules"
        text = smollm_tokenizer.apply_chat_template(row["messages"], tools=tools, tokenize=False)
        assert "<tools>" in text and text.rstrip().endswith("<|im_end|>")
        assert row["verdict"] in ("comply", "refuse", "safe_complete")


def test_sft_split_goes_into_trl_sft_trainer_unchanged(built: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    sft = datasets.load_dataset(str(built), split="sft")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2,
                       report_to=[], max_length=1024, assistant_only_loss=True, use_cpu=True),
        train_dataset=sft,
        processing_class=tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == min(2, len(sft))
    assert (batch["labels"] != -100).any()  # the assistant turns carry loss
    assert (batch["labels"] == -100).any()  # system, user and tool turns do not


def test_rl_split_is_trl_conversational_prompts(built: Path) -> None:
    prompts = datasets.load_dataset(str(built), "rl")
    rl = prompts["rl"]
    assert {"prompt", "kind", "category", "reference", "provenance"} <= set(rl.column_names)
    row = rl[0]
    assert row["prompt"][-1]["role"] == "user" and row["provenance"]["dataset"] == "prompts.jsonl"


def test_rl_prompts_open_with_the_system_prompt_the_traces_had(built: Path) -> None:
    """A stock GRPOTrainer on the `rl` split sees the system prompt IFPOTrainer and the sft traces see."""
    from ascl_data.prompts import adaptive_system_prompt
    from ascl_data.rulebook import load_ruleset

    expected = adaptive_system_prompt(load_ruleset("default"))
    sft = datasets.load_dataset(str(built), split="sft")
    prompts = datasets.load_dataset(str(built), "rl")
    for split in prompts.values():
        for row in split:
            assert row["prompt"][0] == {"role": "system", "content": expected}
    adaptive = [row for row in sft if row["generator"] == "adaptive"]
    assert adaptive and all(row["messages"][0]["content"] == expected for row in adaptive)


def test_sft_rows_carry_reference_and_provenance(built: Path) -> None:
    sft = datasets.load_dataset(str(built), split="sft")
    assert all(row["provenance"]["dataset"] == "prompts.jsonl" for row in sft)
    references = {text: ref for _, _, text, ref in PROMPTS}
    for row in sft:
        user = next(m["content"] for m in row["messages"] if m["role"] == "user")
        assert row["reference"] == references[user]


def test_readme_python_example_builds_and_loads(tmp_path: Path, tiny_model_dir: Path, monkeypatch) -> None:
    """The Recipes page's Python example, on a tiny model instead of the quickstart's (tests/test_docs.py runs it as
    written)."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "recipes.md").read_text()
    block = page.split("From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert '"configs/quickstart.yaml"' in block
    block = block.replace('"configs/quickstart.yaml"', '"recipe.yaml"')
    make_recipe(tmp_path, tiny_model_dir, splits={"sft": 0.5, "rl": 0.5, "eval": 0.0})
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert len(scope["sft"]) + len(scope["rl"]) == scope["result"].summary.accepted > 0


def test_card_and_plots(built: Path) -> None:
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(built / "README.md")
    meta = card.data.to_dict()
    assert meta["license"] == "cc-by-4.0"  # cc0-1.0 prompts, the CC-BY-4.0 rule book
    assert meta["pretty_name"] == "Tiny test build"
    assert {c["config_name"] for c in meta["configs"]} >= {"rl", "rejects"}
    assert meta["size_categories"] == ["n<1K"]
    assert "2602.13562" in card.text and "prompts.jsonl" in card.text and "cc0-1.0" in card.text
    assert "default" in card.text and "recipe hash" in card.text
    # the judge with its held-out figure from the shipped weights' manifest, never the in-distribution one
    from ascl_data.judge.refusal_model import held_out_accuracy

    llama = held_out_accuracy()["xstest_llama2-70b-chat"]
    assert f"leave-one-source-out: {llama:.1%} on Llama-2-70b-chat on XSTest" in " ".join(card.text.split())
    for png in ("consultation_by_kind.png", "rejections.png", "answer_lengths.png", "categories.png"):
        assert (built / "stats" / png).read_bytes()[:4] == b"\x89PNG"
        assert f"stats/{png}" in card.text


def test_shards_share_one_schema(built: Path) -> None:
    schemas = {pq.read_schema(p) for p in (built / "data").glob("sft-*.parquet")}
    assert len(schemas) == 1


def test_rebuild_of_another_recipe_needs_overwrite(tmp_path: Path, tiny_model_dir: Path) -> None:
    recipe = make_recipe(tmp_path, tiny_model_dir, splits={"sft": 0, "rl": 6, "eval": 2})
    runner = CliRunner()
    assert runner.invoke(app, ["build", str(recipe), "--quiet"]).exit_code == 0
    assert not list((tmp_path / "out" / "data").glob("sft-*"))  # no sft prompts: no teacher call, no sft shard
    counts = datasets.load_dataset(str(tmp_path / "out"), "rl")
    assert (len(counts["rl"]), len(counts["eval"])) == (6, 2)
    other = make_recipe(tmp_path, tiny_model_dir, seed=99, splits={"sft": 0, "rl": 6, "eval": 2})
    result = runner.invoke(app, ["build", str(other), "--quiet"])
    assert result.exit_code != 0 and "holds a build of another recipe" in str(result.exception)
    assert runner.invoke(app, ["build", str(other), "--quiet", "--overwrite"]).exit_code == 0


def test_bad_source_fails_before_the_teacher_is_loaded(tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path, tmp_path / "no-model-here")
    (tmp_path / "no-model-here").mkdir()  # a folder with no model: loading it would fail (a missing path is a check error)
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi", "kind": "nice"}\n')
    result = CliRunner().invoke(app, ["build", str(recipe), "--quiet"])
    assert result.exit_code != 0
    assert f"{tmp_path / 'prompts.jsonl'}:1: kind: 'nice' is not a kind" in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_check_validates_without_building(tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path, tmp_path / "no-model-here")
    (tmp_path / "no-model-here").mkdir()  # a folder with no model: loading it would fail (a missing path is a check error)
    result = CliRunner().invoke(app, ["build", str(recipe), "--check"])
    assert result.exit_code == 0 and "are valid" in result.output
    assert not (tmp_path / "out").exists()  # nothing written, no teacher loaded
    result = CliRunner().invoke(app, ["build", str(recipe), "--push-to-hub", "not a repo"])
    assert result.exit_code != 0 and "expected ORG/NAME" in str(result.exception)
    assert not (tmp_path / "out").exists()  # a bad Hub target fails before the build, not after it


# --------------------------------------------------------------------------- the scheduler: no batch or turn barrier


class GatedBackend(ScriptedBackend):
    """Holds back the requests of the `stuck` prompt until every other prompt has been answered (or 20 s pass), and
    records the order in which prompts were answered."""

    def __init__(self, script: dict[str, list], stuck: str):
        super().__init__(script)
        self.stuck, self.answered = stuck, []

    async def generate(self, conversations, tools, params):
        users = [next(m["content"] for m in c if m["role"] == "user") for c in conversations]
        if self.stuck in users:
            deadline = asyncio.get_running_loop().time() + 20
            while len(self.answered) < len(self.script) - 1 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        out = await super().generate(conversations, tools, params)
        self.answered += users
        return out


def scheduler_recipe(tmp_path: Path, n: int, **teacher) -> tuple[Path, list[str]]:
    texts = [f"Write one line about topic number {i}." for i in range(n)]
    path = make_recipe(tmp_path, tmp_path, prompts=[("benign", None, t, None) for t in texts],
                       splits={"sft": 1.0, "rl": 0.0, "eval": 0.0}, output={"dir": "out", "shard_size": 4},
                       dedup={"exact": False, "near": False},
                       teacher={"backend": "transformers", "sampling": {"temperature": 0.0, "max_tokens": 32}, **teacher})
    return path, texts


def test_one_stuck_request_does_not_stall_the_others(tmp_path: Path) -> None:
    path, texts = scheduler_recipe(tmp_path, 12, max_in_flight=4)
    stuck = texts[1]  # in the first chunk: a batch or chunk barrier would wait for it before starting the rest
    backend = GatedBackend({t: [f"Here is a line about {t[-10:]}"] for t in texts}, stuck=stuck)
    result = Build(check_recipe(path), backend=backend, progress=False).run()
    assert backend.answered[-1] == stuck and len(backend.answered) == 12  # all others finished while it hung
    sft = datasets.load_dataset(str(result.out_dir), split="sft")
    assert [m[1]["content"] for m in sft["messages"]] == texts  # rows follow the prompt stream, not completion


def test_requests_in_flight_reach_the_setting_not_a_batch_or_shard(tmp_path: Path) -> None:
    path, texts = scheduler_recipe(tmp_path, 40, max_in_flight=16)
    backend = ScriptedBackend({t: ["A short answer."] for t in texts}, delay={t: 0.05 for t in texts})
    result = Build(check_recipe(path), backend=backend, progress=False).run()
    assert result.summary.sft == 40
    assert backend.peak_in_flight == 16  # above the shard size (4) and the old batch size (8), never above 16


def test_by_default_the_build_admits_four_conversations_per_request_slot(tmp_path: Path) -> None:
    class TwoSlots(ScriptedBackend):
        concurrency = 2  # this double, unlike a real backend, does not cap the requests: it shows what is admitted

    path, texts = scheduler_recipe(tmp_path, 12)
    backend = TwoSlots({t: ["A short answer."] for t in texts}, delay={t: 0.1 for t in texts})
    Build(check_recipe(path), backend=backend, progress=False).run()
    assert backend.peak_in_flight == 8


def test_by_default_a_server_sees_its_concurrency_and_a_stalled_request_holds_up_only_its_own(tmp_path: Path) -> None:
    """The real openai backend over HTTP, default `max_in_flight`: the server never gets more requests at once
    than `max_concurrency`, gets that many, and one request that hangs delays no other conversation."""
    lock, answered, active, peak = threading.Lock(), [], [0], [0]
    stuck = "Write one line about topic number 1."

    def script(path: str, headers: dict[str, str], body: dict) -> Answer:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        deadline = time.monotonic() + 20
        while user == stuck and len(answered) < 9 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.02)
        with lock:
            active[0] -= 1
            answered.append(user)
        return chat_answer("Here is one line about that topic.")

    with ScriptedServer(script) as server:
        path, texts = scheduler_recipe(tmp_path, 10, backend="openai", model="m",
                                       settings={"base_url": server.base_url, "max_concurrency": 2})
        result = Build(check_recipe(path), progress=False).run()
    assert answered[-1] == stuck and len(answered) == len(texts)  # the others all finished while it hung
    assert peak[0] == 2  # the backend's concurrency, reached and never exceeded
    assert result.summary.prompts_in == len(texts) == result.summary.accepted + result.summary.rejected


def test_max_in_flight_below_one_names_the_field(tmp_path: Path) -> None:
    path, _ = scheduler_recipe(tmp_path, 2, max_in_flight=0)
    result = CliRunner().invoke(app, ["build", str(path), "--check"])
    assert result.exit_code != 0
    assert "teacher.max_in_flight: must be at least 1" in str(result.exception)


def test_old_batch_size_key_still_loads_with_a_deprecation_message(tmp_path: Path) -> None:
    path, _ = scheduler_recipe(tmp_path, 2, batch_size=8)
    with pytest.warns(FutureWarning, match="teacher.batch_size is deprecated and ignored"):
        check_recipe(path)


def test_a_fatal_error_stops_the_build_with_its_message(tmp_path: Path) -> None:
    path, texts = scheduler_recipe(tmp_path, 10, max_in_flight=3)
    script: dict[str, list] = {t: ["A short answer."] for t in texts}
    script[texts[5]] = [FatalError("the teacher refused the API key")]
    with pytest.raises(FatalError, match="refused the API key"):
        Build(check_recipe(path), backend=ScriptedBackend(script), progress=False).run()
    assert not (tmp_path / "out" / "README.md").exists()  # no card for a build that did not finish


def test_load_split_reads_the_build_layout_and_the_hub_layout(built: Path, tmp_path: Path) -> None:
    """`rl.data.load_split` asks the build layout for its shards, and still reads a Hub-style folder."""
    from ascl_data.rl.data import load_split

    assert len(load_split(str(built), "rl")) == len(datasets.load_dataset(str(built), "rl", split="rl"))
    hub = tmp_path / "hub"
    (hub / "data").mkdir(parents=True)
    datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": "hi"}], "kind": "benign"}]).to_parquet(
        str(hub / "data" / "rl-00000-of-00001.parquet"))
    datasets.Dataset.from_list([{"messages": [{"role": "user", "content": "hi"}]}]).to_parquet(
        str(hub / "data" / "sft-00000-of-00001.parquet"))
    assert load_split(str(hub), "rl")["kind"] == ["benign"]


class FlakyBackend(ScriptedBackend):
    """Fails the requests of the `failing` prompts with a server error until `healthy` is set."""

    def __init__(self, script: dict[str, list], failing: set[str]):
        super().__init__(script)
        self.failing, self.healthy, self.sent = failing, False, []

    def reply(self, conversation):
        user = next(m["content"] for m in conversation if m["role"] == "user")
        self.sent.append(user)
        if user in self.failing and not self.healthy:
            return Completion(error="server_error: HTTP 503 (after 3 attempts)")
        return super().reply(conversation)


def test_retry_failed_sends_only_transient_rejections_again(tmp_path: Path) -> None:
    """Issue 10: a committed chunk kept its backend_error rejections for good, even once the server was healthy."""
    path, texts = scheduler_recipe(tmp_path, 8)
    flaky = {texts[1], texts[2]}  # both in the first chunk (shard_size 4)
    backend = FlakyBackend({t: [f"An answer about {t[-12:]}"] for t in texts}, failing=flaky)
    first = Build(check_recipe(path), backend=backend, progress=False).run()
    assert first.summary.sft == 6 and first.summary.rejected_by_reason == {"tool_loop/backend_error": 2}
    shards = sorted((first.out_dir / "data").glob("*.parquet"))
    before = {p.name: p.read_bytes() for p in shards}

    backend.healthy, backend.sent = True, []
    Build(check_recipe(path), backend=backend, progress=False).run()  # a plain rerun keeps the rejections
    assert backend.sent == [] and {p.name: p.read_bytes() for p in shards} == before

    retried = Build(check_recipe(path), backend=backend, progress=False, retry_failed=True).run()
    assert retried.summary.sft == 8 and retried.summary.rejected == 0
    assert set(backend.sent) == flaky  # the cache answered everything else
    sft = datasets.load_dataset(str(retried.out_dir), split="sft")
    assert [m[1]["content"] for m in sft["messages"]] == texts  # stream order kept
    untouched = [p for p in shards if p.name.startswith("sft") and "00001" in p.name]  # the chunk without failures
    assert untouched and all(p.read_bytes() == before[p.name] for p in untouched)


def test_ctrl_c_stops_at_once_and_the_build_resumes(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Issue 10: Ctrl-C waited 15-21 s for the generation in flight and said nothing."""
    import signal
    import subprocess
    import sys
    import time

    prompts = [("benign", None, f"Write a long story about the number {i}.", None) for i in range(24)]
    recipe = make_recipe(tmp_path, tiny_model_dir, prompts=prompts, splits={"sft": 1.0, "rl": 0.0, "eval": 0.0},
                         teacher={"backend": "transformers", "model": str(tiny_model_dir),
                                  "sampling": {"temperature": 1.0, "max_tokens": 400, "seed": 0}})
    cmd = [sys.executable, "-m", "ascl_data", "build", str(recipe)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "out" / ".ascl" / "lock"
    deadline = time.monotonic() + 120
    while not lock.exists() and time.monotonic() < deadline:  # the build has claimed its folder
        time.sleep(0.2)
    time.sleep(3)  # generation under way
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 3, "Ctrl-C must stop the build within a second or two"
    assert proc.returncode == 130 and "resumes where it stopped" in err and "Traceback" not in err
    done = subprocess.run(cmd + ["--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rejects = sum(pq.read_metadata(p).num_rows for p in (tmp_path / "out" / "rejects").glob("*.parquet"))
    assert datasets.load_dataset(str(tmp_path / "out"), split="sft").num_rows + rejects == 24  # nothing lost
