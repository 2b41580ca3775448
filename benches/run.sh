#!/usr/bin/env bash
# The side-by-side benchmark in one command: installs what it needs (through
# tools/setup.sh), builds aotc, and runs benches/side_by_side.py, which
# prints aotc vs ONNX Runtime vs PyTorch eager at 1 and 2 threads.
#
#   benches/run.sh                                # the whole set
#   benches/run.sh --only resnet18,softmax        # some of it
#   benches/run.sh --threads 1 --rounds 9         # any side_by_side.py option
#
# Exports and compiled libraries go to $AOTC_CACHE/bench (overwritten on each
# run: every model is exported and compiled again, so the numbers are always
# those of the aotc just built).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
cargo build --release -p aotc
export AOTC_BIN="$CARGO_TARGET_DIR/release/aotc"
exec python benches/side_by_side.py --work "$AOTC_CACHE/bench" "$@"
