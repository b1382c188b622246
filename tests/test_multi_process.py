"""More than one process: `accelerate launch --multi_gpu --num_processes 2` with `use_cpu: true` (gloo on CPU) runs
`ascl-data train sft` and `ascl-data train ifpo` one step each on the tiny model, and IFPO counts rollout modes over
the whole group when the group is split over the processes, batch after batch (the EMA of the consult frequency
included).

What a user relies on: "scale with accelerate" works as written, and the IFPO weights on two processes are the
weights one process computes from the same group, number by number.

Why not `accelerate launch --cpu --num_processes 2`: accelerate's `--cpu` takes its simple launcher, which starts ONE
process whatever `--num_processes` says (several CPU processes need mpirun there). `--multi_gpu` starts them through
torchrun; `use_cpu: true` (a TrainingArguments field) makes them CPU processes joined over gloo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from ascl_data.rl.data import load_split
from ascl_data.rl.ifpo import ConsultFrequencyEMA, IFPOOptions, ifpo_advantages
from ascl_data.rl.toy import write_toy_dataset
from ascl_data.rulebook import load_ruleset

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def accelerate_launch(*args: str, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 ARGS` as a user types it, one thread per process (2 CI
    cores); the processes are CPU ones by the config's `use_cpu: true` (the trainers) or ACCELERATE_USE_CPU (the
    worker, which makes its config itself)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **(env or {})}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Path:
    return write_toy_dataset(tmp_path_factory.mktemp("built"), load_ruleset("compact"))


def test_train_sft_and_ifpo_run_under_accelerate_with_two_processes(tiny_model_dir, toy_data, smollm_tokenizer,
                                                                     tmp_path):
    from test_rl_pipeline import ifpo_settings

    sft_cfg = tmp_path / "sft.yaml"
    sft_cfg.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_model_dir), "dataset_name": str(toy_data), "output_dir": str(tmp_path / "sft"),
        "max_steps": 1, "per_device_train_batch_size": 1, "learning_rate": 1e-3, "max_length": 1024, "bf16": False,
        "report_to": "none", "save_strategy": "no", "use_cpu": True,
    }))
    proc = accelerate_launch("-m", "ascl_data", "train", "sft", str(sft_cfg))
    assert proc.returncode == 0, proc.stderr[-4000:]
    state = json.loads((tmp_path / "sft" / "trainer_state.json").read_text())
    n_traces = len(load_split(str(toy_data), "sft"))
    # one step of 1 trace per process: 2 traces of the epoch (one process would have used 1)
    assert state["global_step"] == 1 and state["log_history"][-1]["epoch"] == pytest.approx(2 / n_traces)
    assert (tmp_path / "sft" / "model.safetensors").is_file()

    # one group of 4 rollouts, 2 on each process (on one process, TRL refuses a batch of 2 for groups of 4)
    ifpo_cfg = tmp_path / "ifpo.yaml"
    ifpo_cfg.write_text(yaml.safe_dump(ifpo_settings(
        tmp_path / "sft", toy_data, tmp_path / "ifpo", smollm_tokenizer, per_device_train_batch_size=2,
        save_strategy="no", use_cpu=True)))
    proc = accelerate_launch("-m", "ascl_data", "train", "ifpo", str(ifpo_cfg))
    assert proc.returncode == 0, proc.stderr[-4000:]
    state = json.loads((tmp_path / "ifpo" / "trainer_state.json").read_text())
    steps = [h for h in state["log_history"] if "ifpo/consult_rate" in h]
    assert state["global_step"] == 1 and len(steps) == 1 and 0.0 <= steps[0]["ifpo/consult_rate"] <= 1.0


def test_ifpo_split_over_two_processes_gives_what_one_process_gives(tiny_model_dir, toy_data, tmp_path):
    """Two batches of one group of 8 (4 rollouts per process), frequencies as a moving average over batches: on
    each process, the advantages trained on and the EMA equal what one process computes from the whole group."""
    worker = Path(__file__).parent / "ddp_ifpo_worker.py"
    proc = accelerate_launch(str(worker), str(tiny_model_dir), str(toy_data), str(tmp_path), "ema", "2",
                             env={"ACCELERATE_USE_CPU": "true"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    options = IFPOOptions(w_min=0.1, w_max=10.0, variant="symmetric", frequency="ema")  # as the worker's config
    one_process_ema = ConsultFrequencyEMA(options.ema_decay)
    mixed = 0
    for batch in range(2):
        records = [r["batches"][batch] for r in ranks]
        flags = torch.tensor(records[0]["flags"] + records[1]["flags"])  # TRL lays the group out rank after rank
        mixed += 0 < int(flags.sum()) < 8
        rewards = torch.tensor(records[0]["rewards"])
        assert rewards.tolist() == records[1]["rewards"]  # both processes saw the same gathered rewards
        frequency = one_process_ema.update(flags)
        expected = ifpo_advantages(rewards, flags, 8, options, frequency)
        for rank, r in enumerate(records):
            assert r["ema"] == pytest.approx(frequency)  # the moving average is of the whole group, on every process
            torch.testing.assert_close(torch.tensor(r["advantages"]), expected[4 * rank: 4 * rank + 4])
            torch.testing.assert_close(torch.tensor(r["logged_advantages"]), expected)  # TRL's log: whole batch
            assert r["consult_rate"] == pytest.approx(flags.float().mean().item())
        if 0 < int(flags.sum()) < 8 and batch == 0:
            # the check tells gathering from each process computing its half on its own
            halves = torch.cat([ifpo_advantages(rewards[h], flags[h], 4, options, ConsultFrequencyEMA(
                options.ema_decay).update(flags[h])) for h in (slice(0, 4), slice(4, 8))])
            assert not torch.allclose(halves, expected)
    assert mixed, "the steered policy should mix both modes in at least one batch"
