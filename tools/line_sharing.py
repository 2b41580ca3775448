"""Which cache lines each kernel moves between the two threads of a run,
and what that costs when the threads' cores share no last-level cache
("far", tools/placement.py), predicted on any machine: the model is
compiled with `aotc --trace-memory` against a runtime built with the
`line-sharing` feature (runtime/src/line_sharing.rs), which follows every
64-byte line's last writer and its readers since, and run on two threads
by benches/watch.

    python tools/line_sharing.py MODEL.pt2 [--seconds 20] [--top 30]

Prints per function (kernels by the names `--emit parallel` prints) the
lines per run it moves, by how (runtime/src/line_sharing.rs), and the
microseconds per run those moves add to the run far: 0.56 ns per line read
that the other thread wrote, 3.2 ns per line written that the other thread
touched since this one last wrote it, however. Fitted on resnet18
(session 28): each kernel's far time at 2 threads less half its 1-thread
time (tools/kernel_times.py, 65 kernels, 2485 us per run in all) against
its lines; correlation 0.95, 93% of the total (pricing the three kinds of
write apart fits no better: 0.96). On mobilenet_v2 far, not fitted: 0.86
over 54 kernels, 75% of its 1322 us. benches/cross_core.c's streaming turns
price a write right after the read like a private one; in kernels the
reads come long before the writes. A traced run takes ~100x an untraced
one.
"""
import argparse
import collections
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_times import ROOT, build, run, threads_fixed  # noqa: E402

MOVES = ["remote_read", "over_read", "over_written", "after_reading"]

# Far, nanoseconds of the run per line moved (see the module's comment).
EXTRA_NS = {"remote_read": 0.56, "over_read": 3.2, "over_written": 3.2, "after_reading": 3.2}


def parse(stderr):
    """function -> thread -> {move: lines}"""
    rows = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    for line in stderr.splitlines():
        parts = line.split()
        if parts[:1] != ["aotc-line-sharing"] or len(parts) < 4 + 2 * len(MOVES):
            continue
        # a kernel's task (which unpacks its arguments) counts as the kernel
        name = parts[1].removesuffix("_task").split("_forward_", 1)[-1]
        rows[name][int(parts[3])].update(dict(zip(parts[4::2], map(int, parts[5::2]))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the .pt2 archive")
    parser.add_argument("--seconds", type=float, default=20, help="traced run time (at least one run)")
    parser.add_argument("--top", type=int, default=30)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    parser.add_argument("--aotc", default=os.path.join(target, "release", "aotc"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        lib, watch = build(work, args.model, args.aotc, target, "line-sharing", ["--trace-memory"])
        p = run([watch, lib, "bench", "2", str(args.seconds), "1"], capture_output=True, env=threads_fixed())
    batches = [line.split() for line in p.stdout.splitlines() if line and not line.startswith("#")]
    runs = sum(int(b[2]) for b in batches)
    rows = parse(p.stderr)
    if runs == 0 or not rows:
        sys.exit("line_sharing: no traced run finished")
    table = []
    for name, threads in rows.items():
        lines = {m: sum(t.get(m, 0) for t in threads.values()) / runs for m in MOVES}
        extra = sum(lines[m] * EXTRA_NS[m] for m in MOVES) / 1e3
        table.append((extra, name, lines))
    table.sort(key=lambda r: -r[0])
    print(f"# {args.model}: cache lines per run moved between 2 threads ({runs} traced runs), far cost predicted")
    print(f"{'function':<24}" + "".join(f" {m:>13}" for m in MOVES) + f" {'far us':>8}")
    for extra, name, lines in table[:args.top]:
        print(f"{name:<24}" + "".join(f" {lines[m]:>13.0f}" for m in MOVES) + f" {extra:>8.1f}")
    total = sum(r[0] for r in table)
    print(f"{'all':<24}" + "".join(f" {sum(r[2][m] for r in table):>13.0f}" for m in MOVES) + f" {total:>8.1f}")


if __name__ == "__main__":
    main()
