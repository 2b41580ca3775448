"""The core ATen op set that inference uses, computed from torch itself.

Ops tagged torch.Tag.core, minus the ones that have no place in a compiled
inference program; each exclusion has its reason. Run it to print the list;
tools/export_op_suite.py writes it next to the op-suite fixtures so that the
coverage table ("N of M core inference ops") follows the installed torch.

Usage: python tools/core_ops.py [--json]
"""
import json
import sys

import torch

# Why an op is left out, by a test on its name; the first match wins.
EXCLUSIONS = [
    (lambda n: "backward" in n, "backward op (training only)"),
    (lambda n: n.split(".")[1] in ("rand", "randn", "randperm", "native_dropout"), "random op"),
    (lambda n: "_fft_" in n, "complex/FFT op"),
    (lambda n: n.split(".")[1] in ("nonzero", "_local_scalar_dense"), "output shape or value depends on data"),
    (lambda n: n.split(".")[1].startswith("sym_"), "symbolic-shape query (shapes are static)"),
    (lambda n: n.endswith(".out"), "out= variant (export is functional)"),
]


def core_ops():
    """Every core overload as `aten.<op>.<overload>`, sorted."""
    ops = []
    for name in dir(torch.ops.aten):
        try:
            packet = getattr(torch.ops.aten, name)
        except Exception:
            continue
        if not hasattr(packet, "overloads"):
            continue
        for overload in packet.overloads():
            if torch.Tag.core in getattr(packet, overload).tags:
                ops.append(f"aten.{name}.{overload}")
    return sorted(ops)


def split_inference(ops):
    """(included, {excluded op: reason})."""
    included, excluded = [], {}
    for op in ops:
        reason = next((why for test, why in EXCLUSIONS if test(op)), None)
        if reason is None:
            included.append(op)
        else:
            excluded[op] = reason
    return included, excluded


def main():
    included, excluded = split_inference(core_ops())
    if "--json" in sys.argv:
        print(json.dumps({"torch": torch.__version__, "included": included, "excluded": excluded}, indent=1))
        return
    print(f"{len(included) + len(excluded)} core ops in torch {torch.__version__}; "
          f"{len(included)} for inference, {len(excluded)} left out:")
    for op, why in sorted(excluded.items()):
        print(f"  {op}: {why}")


if __name__ == "__main__":
    main()
