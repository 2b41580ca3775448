#!/usr/bin/env python3
"""ONNX Runtime's time per node of a model, to compare layer by layer with
aotc's kernels (perf on a C loop, see benches/README.md).

    python tools/ort_node_times.py ~/.cache/aotc/bench/mobilenet_v2/model.onnx --threads 1

Runs the model on random inputs (static shapes) with ORT's profiler on and
prints each node's mean kernel time per run (microseconds), its op and
output shape, in execution order, then the totals per op type. The
profiler adds a little to every node; compare shapes, not totals.
"""

import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an .onnx file")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--runs", type=int, default=200, help="profiled runs after 20 warm-up runs")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        if any(not isinstance(d, int) for d in i.shape):
            raise SystemExit(f"error: input {i.name} has a symbolic shape {i.shape}")
        feeds[i.name] = rng.random(i.shape).astype(types.get(i.type, np.float32))
    for _ in range(20):
        session.run(None, feeds)
    # the warm-up runs are in the profile too: count every run
    for _ in range(args.runs):
        session.run(None, feeds)
    runs = 20 + args.runs
    with open(session.end_profiling()) as f:
        events = json.load(f)

    per_node = collections.OrderedDict()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            node = per_node.setdefault(e["name"], {"us": 0.0, "op": e["args"].get("op_name"), "shape": e["args"].get("output_type_shape")})
            node["us"] += e["dur"]
    per_op = collections.Counter()
    for name, node in per_node.items():
        us = node["us"] / runs
        per_op[node["op"]] += us
        shape = [list(t.values())[0] for t in node["shape"] or []]
        print(f"{us:9.1f} us  {node['op']:16s} {shape}  {name[: -len('_kernel_time')]}")
    print(f"\ntotal {sum(per_op.values()) / 1000:.3f} ms per run ({args.threads} thread(s))")
    for op, us in per_op.most_common():
        print(f"  {op:16s} {us / 1000:8.3f} ms")


if __name__ == "__main__":
    main()
