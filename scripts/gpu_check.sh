#!/usr/bin/env bash
# Every check that needs a CUDA GPU, as one script for a lent GPU machine (sized to fit one
# 10-minute device run, not yet timed on a GPU; docs/benchmarks.md says where the results go):
#   bash scripts/gpu_wheels.sh             # here, once: the wheels that machine lacks, into .whl/
#   device run: bash scripts/gpu_check.sh  # carry [".whl"], timeout_s 600
# It runs the gpu-marked tests (tests/test_cuda.py), then the ensemble, DCGAN and feature benchmarks
# on CUDA, and writes $OUT/gpu_check.log and $OUT/bench.jsonl (one JSON line per benchmark).
# QUICK=1 DEVICE=cpu PY=.venv/bin/python bash scripts/gpu_check.sh is a dry run of the same steps here.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/outputs/gpu_check}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ] && ! $PY -c "import hydra" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || exit 2
fi
if [ "$QUICK" = 1 ]; then  # sizes for a dry run on the CPU: checks the command lines, not the speed
  ENS=(--k 1 4 --steps 16) CENS=(--k 1 2 --steps 4 --batch 8) DC=(--steps 4 --images 32 --batch 8 --resolution 32) FEAT=(--images 8 --batch 4)
  TENS=(--k 1 2 --steps 8 --batch 8 --images 16)
else
  ENS=(--k 1 16 64 200 --steps 2000) CENS=(--k 1 16 64 100 --steps 400 --batch 64) DC=(--steps 400 --images 2048 --batch 128 --resolution 64) FEAT=(--images 2048 --batch 256)
  TENS=(--k 1 16 100 --steps 200 --batch 64 --images 2048)
fi
GB=("$PY" -m gan_bench.cli bench)
exec > >(tee "$OUT/gpu_check.log") 2>&1
status=0
step() { echo "== $*"; "$@" || { echo "!! failed ($?): $*"; status=1; }; }
bench() {  # stdout is the benchmark's JSON line: kept in bench.jsonl and shown in the log
  echo "== bench $*"
  if "${GB[@]}" "$@" > "$OUT/last.json"; then tee -a "$OUT/bench.jsonl" < "$OUT/last.json"
  else echo "!! failed: bench $*"; status=1; fi
}
step nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
GAN_BENCH_TEST_DEVICE=$DEVICE step "$PY" -m pytest -q -m gpu tests/test_cuda.py -p no:cacheprovider
bench ensemble --device "$DEVICE" --repeats 1 "${ENS[@]}"
bench ensemble --model isit23_smnist --device "$DEVICE" --repeats 1 --loop module "${CENS[@]}"
bench ensemble --model isit23_smnist --device "$DEVICE" --repeats 1 --loop trainer --impl grouped "${TENS[@]}"
bench dcgan --device "$DEVICE" --repeats 2 "${DC[@]}" eval.metrics=[] eval.final_metrics=[]
bench features --device "$DEVICE" "${FEAT[@]}"
rm -f "$OUT/last.json"
exit $status
