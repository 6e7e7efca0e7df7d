#!/usr/bin/env bash
# Run here, once, before scripts/gpu_check.sh goes to a lent GPU machine: that machine has PyTorch,
# torchvision, TensorBoard, SciPy, Pillow, tqdm, PyYAML and pytest but reaches no package registry,
# so gan-bench's other needs travel as wheels in .whl/ (git-ignored), for its Python 3.12, at the
# versions the team's .venv has.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl hydra-core==1.3.8 omegaconf==2.3.1 torch-fidelity==0.4.0 lmdb==3.0.0 submitit==1.5.4
# antlr4 4.9.3 (omegaconf's parser runtime) is published as a source archive only; pip builds it here.
pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -la .whl
