#!/usr/bin/env bash
# Exports test fixtures with torch into a folder keyed by torch's version and
# the exporting scripts' hash, reused while both stay the same; prints the
# folder. Source tools/setup.sh first.
#
#   tools/fixtures.sh          simple_net, per-rule programs, broken archives (export_fixtures.py)
#   tools/fixtures.sh ops      the op suite and the core op list (export_op_suite.py)
#   tools/fixtures.sh zoo      the model zoo (export_zoo.py)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kind="${1:-base}"
case "$kind" in
  base) scripts="export_fixtures.py export_programs.py export_simple_net.py export_hostile.py fixture_io.py"; exporter=export_fixtures.py ;;
  ops) scripts="export_op_suite.py core_ops.py fixture_io.py"; exporter=export_op_suite.py ;;
  zoo) scripts="export_zoo.py fixture_io.py"; exporter=export_zoo.py ;;
  *) echo "fixtures.sh: unknown kind '$kind' (base, ops, zoo)" >&2; exit 2 ;;
esac
versions="$(python -c 'import torch, torchvision, transformers; print(torch.__version__, torchvision.__version__, transformers.__version__)')"
key="$( (echo "$versions"; cd "$here" && cat $scripts) | sha256sum | cut -c1-16)"
dir="$AOTC_CACHE/fixtures/$kind-$key"
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir"
  echo "fixtures: exporting $kind into $dir" >&2
  python "$here/$exporter" "$dir" >&2
  touch "$dir/.complete"
fi
echo "$dir"
