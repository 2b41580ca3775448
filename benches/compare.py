"""Side-by-side latency: the library aotc generates vs PyTorch eager, in the
same run, on the same machine, one thread, batch as exported.

Usage: python benches/compare.py [ARCHIVE.pt2 ...]   (default: examples/simple_net.pt2)

Needs the release build (cargo build --release); tools/setup.sh provides
torch. Prints medians over repeated samples and the ratio torch / aotc
(above 1 means aotc is faster). The machine is shared: compare ratios.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
AOTC = os.environ.get("AOTC_BIN", os.path.join(TARGET, "release", "aotc"))


def aotc_median_us(archive, work):
    lib = os.path.join(work, "libbench_model.so")
    subprocess.run([AOTC, archive, "-o", lib], check=True)
    harness = os.path.join(work, "harness")
    subprocess.run(["cc", "-O2", os.path.join(ROOT, "benches", "harness.c"), "-o", harness, "-ldl"], check=True)
    out = subprocess.run([harness, lib, "bench_model", "200", "30"], check=True, capture_output=True, text=True).stdout
    return float(out.split()[1])


def torch_median_us(archive, runs=200, samples=30):
    torch.set_num_threads(1)
    ep = torch.export.load(archive)
    module = ep.module()
    args, kwargs = ep.example_inputs
    with torch.inference_mode():
        for _ in range(runs):
            module(*args, **kwargs)
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            for _ in range(runs):
                module(*args, **kwargs)
            times.append((time.perf_counter() - start) / runs * 1e6)
    return statistics.median(times)


def main():
    archives = sys.argv[1:] or [os.path.join(ROOT, "examples", "simple_net.pt2")]
    print(f"{'model':<24} {'aotc median':>14} {'torch eager median':>20} {'torch/aotc':>11}")
    with tempfile.TemporaryDirectory() as work:
        for archive in archives:
            ours = aotc_median_us(archive, work)
            theirs = torch_median_us(archive)
            name = os.path.basename(archive)
            print(f"{name:<24} {ours:>11.2f} us {theirs:>17.2f} us {theirs / ours:>10.2f}x")


if __name__ == "__main__":
    main()
