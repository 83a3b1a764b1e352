#!/usr/bin/env bash
# GPU readiness of the paper profile (see benchmarks/gpu_check.py): one CUDA device, under 8 minutes.
# It ends with every part that trains networks (expert epoch, evaluation, distill unrolled and
# checkpointed) at fp32 and at bf16, printing each part's time and peak CUDA memory per precision.
# Usage: bash benchmarks/gpu_check.sh [--cifar-path DIR] [--out DIR]   (--cpu-smoke: toy run on the CPU)
# The 8-minute budget (timeout 480) is the accelerator's; the CPU smoke run has no time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
for arg in "$@"; do
    if [ "$arg" = "--cpu-smoke" ]; then
        exec "$PYTHON" -m benchmarks.gpu_check "$@"
    fi
done
exec timeout 480 "$PYTHON" -m benchmarks.gpu_check "$@"
