# lit configuration for aotc's FileCheck tests, one folder per pipeline stage.
#
# Run through tools/test.sh, or by hand:
#   AOTC_BIN=target/release/aotc AOTC_FIXTURES=<dir from tools/export_fixtures.py> \
#     lit -v lit-tests
import os
import sys

import lit.formats

config.name = "aotc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
# Temporary files go under the cargo target dir, not into the source tree.
if "CARGO_TARGET_DIR" in os.environ:
    config.test_exec_root = os.path.join(os.environ["CARGO_TARGET_DIR"], "lit")

aotc = os.path.abspath(os.environ.get("AOTC_BIN", os.path.join(config.test_source_root, "..", "target", "release", "aotc")))
fixtures = os.environ.get("AOTC_FIXTURES")
if not fixtures:
    lit_config.fatal("set AOTC_FIXTURES to the folder written by tools/export_fixtures.py")

config.substitutions.append(("aotc-opt", f"{aotc} opt"))
config.substitutions.append(("%aotc", aotc))
config.substitutions.append(("%fixtures", fixtures))
# the Python tools in tools/, run by the interpreter that runs lit
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%tools", os.path.join(config.test_source_root, "..", "tools")))
llvm_bin = os.environ.get("LLVM_BIN", "/usr/lib/llvm-22/bin")
config.environment["PATH"] = os.pathsep.join([llvm_bin, os.environ.get("PATH", "")])
for var in ("AOTC_RUNTIME_LIB", "HOME"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
