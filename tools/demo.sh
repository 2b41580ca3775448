#!/usr/bin/env bash
# Sets up, builds aotc, compiles examples/simple_net.pt2 into
# build/libsimple.so (+ build/simple.h) and runs it from the C example.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
cargo build --release --workspace
mkdir -p build
"$CARGO_TARGET_DIR/release/aotc" examples/simple_net.pt2 -o build/libsimple.so
cc examples/c/main.c -Ibuild -Lbuild -lsimple -o build/simple_app
echo "--- build/simple_app examples/simple_net_input.npy"
LD_LIBRARY_PATH=build ./build/simple_app examples/simple_net_input.npy
echo "--- torch's outputs for the same input (examples/simple_net_output_*.npy):"
python -c "import numpy as np; [print(f'output_{k}', np.load(f'examples/simple_net_output_{k}.npy').ravel()) for k in (0, 1)]"
