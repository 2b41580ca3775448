#!/usr/bin/env bash
# Runs every test: Rust unit tests, the end-to-end tests against PyTorch, and
# the lit + FileCheck tests of each pipeline stage. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh

export AOTC_FIXTURES="$(tools/fixtures.sh)"
ops_fixtures="$(tools/fixtures.sh ops)"
zoo_fixtures="$(tools/fixtures.sh zoo)"
echo "fixtures: $AOTC_FIXTURES $ops_fixtures $zoo_fixtures"

cargo build --release --workspace
cargo test --release --workspace --exclude aotc-benches
# the runtime with its kernel timing (a developers' build, tools/kernel_times.py),
# in a target dir of its own so the runtime that models link stays plain
cargo test --release -p aotc-runtime --features kernel-times --lib --target-dir "$CARGO_TARGET_DIR/kernel-times"
# and with its line-sharing trace (tools/line_sharing.py)
cargo test --release -p aotc-runtime --features line-sharing --lib --target-dir "$CARGO_TARGET_DIR/line-sharing"

export AOTC_BIN="$CARGO_TARGET_DIR/release/aotc"
lit_log="$(mktemp)"
status=0
lit -v lit-tests 2>&1 | tee "$lit_log" || status=$?
passed=$(grep -c '^PASS:' "$lit_log" || true)
failed=$(grep -cE '^(FAIL|XPASS|UNRESOLVED):' "$lit_log" || true)
rm -f "$lit_log"
echo "lit: $passed passed, $failed failed"

# The developers' tools end to end on a small model: the kernel timing (its
# runtime, the kernels named) and the line-sharing trace (a traced model's
# kernels and the lines they move).
squeezenet="$zoo_fixtures/zoo/squeezenet1_1/default/model.pt2"
tool_lists_kernels() {
  local name="$1" out
  shift
  if out="$("$@")" && grep -q '^k[0-9]*_parallel ' <<<"$out"; then
    echo "$name: ok"
  else
    echo "$name: FAILED"
    status=1
  fi
}
tool_lists_kernels kernel_times python tools/kernel_times.py "$squeezenet" --threads 1,2 --seconds 0.5 --top 3
tool_lists_kernels line_sharing python tools/line_sharing.py "$squeezenet" --seconds 1 --top 3

# The op suite and the model zoo against torch, with their tables.
python tools/conformance.py --aotc "$AOTC_BIN" --ops "$ops_fixtures" --zoo "$zoo_fixtures" || status=$?
exit $status
