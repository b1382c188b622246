#!/usr/bin/env bash
# The rl tests against a second TRL release (issue 22): the `train` extra takes trl>=1.15,<1.17, and .ci/run tests
# the newest (the one .ci/setup installs). This runs the rl tests again in an environment of their own,
# .venv-trl<VERSION> (or $TRL_VENV), with the package and `trl==VERSION`. Run it after .ci/setup, whose cache holds
# the embedded model the tests' tokenizer comes from. Cost on 2 CPU cores: the environment (torch, once) and about
# two minutes of tests.
#
#   bash .ci/test_trl_versions.sh            # TRL 1.15.0, the lower bound of the pin
#   bash .ci/test_trl_versions.sh 1.16.0     # or any other release
#
# TRL 1.15's GRPO loss runs Triton kernels, so on a machine without a GPU the tests that train skip, saying so; the
# IFPO step itself (TRL's rollouts, rewards and advantages, reweighted; one and two processes) runs on every release.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-1.15.0}
VENV=${TRL_VENV:-.venv-trl$VERSION}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# torch as .ci/setup installs it: the CPU build on Linux without an NVIDIA GPU
TORCH=(torch==2.13.0)
if [ "$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1; then
  TORCH+=(--extra-index-url https://download.pytorch.org/whl/cpu --retries 1)
fi
"$VENV/bin/python" -c "import torch" 2>/dev/null || "${PIP[@]}" install "${TORCH[@]}"
PYTHONWARNINGS="ignore:Editable installation" "${PIP[@]}" install -e ".[train,embedded,peft]" "trl==$VERSION" \
  "pytest>=8" "pytest-timeout>=2.3" pandas
"$VENV/bin/python" -c "import sys, trl; v = trl.__version__; print('trl', v); sys.exit(v != '$VERSION')"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$VENV/bin/python" -m pytest -q -rs --timeout 900 tests/test_ifpo.py tests/test_ifpo_trainer.py \
  tests/test_rl_pipeline.py tests/test_multi_process.py \
  -k "not cli_pipeline and not test_train_sft_and_ifpo_run_under_accelerate"
