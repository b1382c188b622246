#!/usr/bin/env bash
# The whole rl path with SmolLM2-135M-Instruct (the embedded model): toy dataset -> SFT -> IFPO -> eval.
# On a 2-core CPU this takes tens of minutes; on a GPU a few. Usage: rl/examples/smollm2_pipeline.sh [RUN_DIR]
set -euo pipefail
RUN=${1:-runs/smollm2-pipeline}
mkdir -p "$RUN"
MODEL=$(python -c "from ascl_data.embedded import embedded_model_path; print(embedded_model_path())")
# A small built dataset in the build's layout (use the folder of `ascl-data build RECIPE.yaml` instead when you have one).
python -m ascl_data.rl.toy "$RUN/data" compact 2
ascl-data train sft configs/sft_smollm2.yaml \
  --model_name_or_path "$MODEL" --dataset_name "$RUN/data" --output_dir "$RUN/sft" \
  --max_steps 20 --gradient_accumulation_steps 1 --max_length 1024
ascl-data train ifpo configs/ifpo_smollm2.yaml \
  --model_name_or_path "$RUN/sft" --dataset_name "$RUN/data" --output_dir "$RUN/ifpo" \
  --max_steps 10 --per_device_train_batch_size 4 --num_generations 4 \
  --max_completion_length 256 --max_tool_calling_iterations 1 --learning_rate 1e-5
ascl-data eval --model "$RUN/ifpo" --dataset "$RUN/data" --ruleset compact --max-new-tokens 128 --out "$RUN/eval"
