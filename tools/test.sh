#!/usr/bin/env bash
# Runs every test: Rust unit tests, the end-to-end tests against PyTorch, and
# the lit + FileCheck tests of each pipeline stage. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh

export AOTC_FIXTURES="$(tools/fixtures.sh)"
echo "fixtures: $AOTC_FIXTURES"

cargo build --release --workspace
cargo test --release --workspace --exclude aotc-benches

export AOTC_BIN="$CARGO_TARGET_DIR/release/aotc"
lit_log="$(mktemp)"
status=0
lit -v lit-tests 2>&1 | tee "$lit_log" || status=$?
passed=$(grep -c '^PASS:' "$lit_log" || true)
failed=$(grep -cE '^(FAIL|XPASS|UNRESOLVED):' "$lit_log" || true)
rm -f "$lit_log"
echo "lit: $passed passed, $failed failed"
exit $status
