#!/usr/bin/env bash
# The whole rl path with SmolLM2-135M-Instruct (the embedded model): toy dataset -> SFT -> IFPO -> eval.
# On a 2-core CPU this takes tens of minutes; on a GPU a few. Usage: rl/examples/smollm2_pipeline.sh [RUN_DIR]
set -euo pipefail
RUN=${1:-runs/smollm2-pipeline}
mkdir -p "$RUN"
MODEL=$(python -c "from ascl_data.embedded import embedded_model_path; print(embedded_model_path())")
# A small built dataset in the build's layout (use the folder of `ascl-data build RECIPE.yaml` instead when you have one).
python -c "from ascl_data.rl.toy import write_toy_dataset; from ascl_data.rulebook import load_ruleset; write_toy_dataset('$RUN/data', load_ruleset('compact'), repeat=2)"
ascl-data train sft configs/sft_smollm2.yaml \
  --set model="$MODEL" --set dataset="$RUN/data" --set output_dir="$RUN/sft" \
  --set max_steps=20 --set gradient_accumulation_steps=1 --set max_length=1024
ascl-data train ifpo configs/ifpo_smollm2.yaml \
  --set model="$RUN/sft" --set dataset="$RUN/data" --set output_dir="$RUN/ifpo" --set ruleset=compact \
  --set max_steps=10 --set per_device_train_batch_size=4 --set num_generations=4 \
  --set max_completion_length=256 --set max_tool_calling_iterations=1 --set learning_rate=1e-5
ascl-data eval --model "$RUN/ifpo" --dataset "$RUN/data" --ruleset compact --max-new-tokens 128 --out "$RUN/eval.json"
