"""Side-by-side latency: the library aotc generates vs PyTorch eager, in the
same run, on the same machine, one thread, batch as exported.

Usage: python benches/compare.py [ARCHIVE.pt2 ...]   (default: examples/simple_net.pt2)

Needs the release build (cargo build --release); tools/setup.sh provides
torch. The two are measured in alternating rounds (so that load from other
work on a shared machine hits both alike); each round takes the median of
its samples. Prints the median over rounds of each latency and of the
per-round ratio torch / aotc (above 1 means aotc is faster).
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

# One thread for torch, set before anything runs: idle intra-op workers would
# otherwise compete with the compiled library's timing process.
torch.set_num_threads(1)
ROUNDS = 5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
AOTC = os.environ.get("AOTC_BIN", os.path.join(TARGET, "release", "aotc"))


def build_aotc(archive, work):
    """Compiles the archive and the timing harness; returns the harness command."""
    lib = os.path.join(work, "libbench_model.so")
    subprocess.run([AOTC, archive, "-o", lib], check=True)
    harness = os.path.join(work, "harness")
    header = os.path.join(work, "bench_model.h")
    subprocess.run(["cc", "-O2", "-include", header, os.path.join(ROOT, "benches", "harness.c"), "-o", harness, "-ldl"], check=True)
    return [harness, lib, "bench_model", "200", "15"]


def aotc_median_us(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(out.split()[1])


def torch_median_us(module, args, kwargs, runs=200, samples=15):
    with torch.inference_mode():
        for _ in range(runs // 4):
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
    print(f"{'model':<24} {'aotc median':>14} {'torch eager median':>20} {'torch/aotc (median of rounds)':>30}")
    with tempfile.TemporaryDirectory() as work:
        for archive in archives:
            command = build_aotc(archive, work)
            ep = torch.export.load(archive)
            module = ep.module()
            args, kwargs = ep.example_inputs
            ours, theirs, ratios = [], [], []
            for _ in range(ROUNDS):
                ours.append(aotc_median_us(command))
                theirs.append(torch_median_us(module, args, kwargs))
                ratios.append(theirs[-1] / ours[-1])
            name = os.path.basename(archive)
            print(f"{name:<24} {statistics.median(ours):>11.2f} us {statistics.median(theirs):>17.2f} us "
                  f"{statistics.median(ratios):>29.2f}x")


if __name__ == "__main__":
    main()
