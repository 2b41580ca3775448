#!/usr/bin/env bash
# Installs what aotc needs and exports the environment; idempotent, so every
# other script sources it. Needs root for apt-get (as on the CI machines).
#
#   LLVM/MLIR 22 from Debian (bookworm-security): llvm-22-dev libmlir-22-dev
#     mlir-22-tools llvm-22-tools (FileCheck) libclang-22-dev (bindgen)
#   Python venv with torch 2.15 (the reference), numpy, lit, and torchvision
#   and transformers (the model zoo's architectures), and ONNX Runtime with
#   onnx and onnxscript (the peer in benches/side_by_side.py), cached in
#     $AOTC_CACHE (default ~/.cache/aotc), outside the clone, with pip's cache.
#   Cargo's target dir in $AOTC_CACHE/target unless CARGO_TARGET_DIR is set.
set -euo pipefail

export AOTC_CACHE="${AOTC_CACHE:-${HOME:-/root}/.cache/aotc}"
mkdir -p "$AOTC_CACHE"

packages="llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools libclang-22-dev libpolly-22-dev zlib1g-dev libzstd-dev build-essential binutils"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q $missing
fi

venv="$AOTC_CACHE/venv"
if ! "$venv/bin/python" -c "import torch, numpy, lit" 2>/dev/null; then
  echo "setup: creating the Python environment in $venv (torch is large; this is done once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --cache-dir "$AOTC_CACHE/pip" --upgrade pip
  "$venv/bin/pip" install -q --cache-dir "$AOTC_CACHE/pip" "torch==2.15.*" numpy lit
fi
if ! "$venv/bin/python" -c "import torchvision, transformers" 2>/dev/null; then
  echo "setup: installing torchvision and transformers into $venv"
  "$venv/bin/pip" install -q --cache-dir "$AOTC_CACHE/pip" "torch==2.15.*" "torchvision==0.29.2" "transformers==5.24.0"
fi
if ! "$venv/bin/python" -c "import onnxruntime, onnx, onnxscript" 2>/dev/null; then
  echo "setup: installing ONNX Runtime (the benchmark peer) into $venv"
  "$venv/bin/pip" install -q --cache-dir "$AOTC_CACHE/pip" "onnxruntime==1.32.0" "onnx==1.23.2" "onnxscript==0.7.2"
fi
export PATH="$venv/bin:/usr/lib/llvm-22/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$AOTC_CACHE/target}"
