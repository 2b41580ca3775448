#!/usr/bin/env bash
# Exports the test fixtures with torch (tools/export_fixtures.py) into a folder
# keyed by torch's version and the export scripts' hash, reused while both
# stay the same. Prints the folder. Source tools/setup.sh first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
torch_version="$(python -c 'import torch; print(torch.__version__)')"
scripts_hash="$(cat "$here"/export_*.py | sha256sum | cut -c1-16)"
dir="$AOTC_CACHE/fixtures/$torch_version-$scripts_hash"
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir"
  python "$here/export_fixtures.py" "$dir" >&2
  touch "$dir/.complete"
fi
echo "$dir"
