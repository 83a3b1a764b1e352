#!/usr/bin/env bash
# GPU readiness of the paper profile (see benchmarks/gpu_check.py): one CUDA device, under 8 minutes.
# Usage: bash benchmarks/gpu_check.sh [--cifar-path DIR] [--out DIR]   (--cpu-smoke: toy run on the CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec timeout 480 "$PYTHON" benchmarks/gpu_check.py "$@"
