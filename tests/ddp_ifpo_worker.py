"""One process of the IFPO multi-process tests, started by `torch.distributed.run` or `accelerate launch` (not
collected by pytest): `ddp_ifpo_worker.py MODEL DATA OUT [FREQUENCY [BATCHES]]`.

Each process rolls out its share of one group of 8 (4 rollouts here, 4 on the other process), BATCHES times, and
writes what the tests need to check that IFPO counted modes over the whole group: its own modes, TRL's gathered
rewards and advantages, the consult-frequency EMA and its output. The first batch's record is also written at the top
level (what `test_ifpo_gathers_modes_across_processes` reads).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_rl_pipeline import ifpo_settings  # noqa: E402

from ascl_data.rl.config import IFPOConfig  # noqa: E402
from ascl_data.rl.environment import consulted  # noqa: E402
from ascl_data.rl.trainer import build_ifpo_trainer  # noqa: E402


def main(model: str, data: str, out: str, frequency: str = "group", batches: str = "1") -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    settings = IFPOConfig(**ifpo_settings(
        Path(model), Path(data), Path(out) / "trainer", tokenizer,
        per_device_train_batch_size=4, num_generations=8, ifpo_w_min=0.1, ifpo_w_max=10.0, ifpo_variant="symmetric",
        ifpo_frequency=frequency,
    ))
    trainer = build_ifpo_trainer(settings)
    trainer.model.train()
    rank = trainer.accelerator.process_index
    records = []
    for _ in range(int(batches)):
        inputs = [dict(trainer.train_dataset[0]) for _ in range(4)]  # this process's half of the group
        output = trainer._generate_and_score_completions(inputs)
        metrics = trainer.ifpo_metrics["train"]
        records.append({
            "flags": [bool(consulted(c)) for c in trainer.rollouts.completions],
            "rewards": trainer.rollouts.rewards_per_func.nansum(dim=1).tolist(),  # gathered over processes
            "logged_advantages": list(trainer._logs["advantages"])[-8:],
            "advantages": output["advantages"].tolist(),
            "consult_rate": metrics["ifpo/consult_rate"][-1],
            "ema": metrics["ifpo/consult_frequency_ema"][-1] if frequency == "ema" else None,
        })
    record = {"rank": rank, "world_size": trainer.accelerator.num_processes, **records[0], "batches": records}
    Path(out, f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(*sys.argv[1:6])
