"""Each parallel kernel's wall time per run, at each thread count and, at
several threads, with the first two CPUs "near" or "far" (tools/placement.py):
the model is compiled against a runtime built with the `kernel-times`
feature (runtime/src/kernel_times.rs), run by benches/watch in chunks of a
few seconds, and its kernels are named from the library's symbols (the
names `--emit parallel` prints).

    python tools/kernel_times.py MODEL.pt2 --threads 1,2 --placement near

Prints per kernel its calls per run and, per thread count, microseconds per
run, the speed-up over the first count, and the waits at the ends of its
calls at the last count (the caller for the workers' last pieces plus the
workers for the caller's). A chunk counts only if its batches ran in the
asked placement (19 in 20 of those placed, 4 in 5 of all); at one thread
any placement counts. Kernels that stay
on the calling thread are not timed (the "rest" line is the run's time
outside the parallel kernels).
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from placement import placement_of  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def threads_fixed():
    """The environment in which every run of a library uses the thread count
    it was asked for, never the calling thread alone where that is faster
    (runtime/src/thread_choice.rs): the tools time the threads themselves."""
    return dict(os.environ, AOTC_ADAPTIVE_THREADS="0")


def build(work, model, aotc, target, feature="kernel-times", aotc_args=()):
    """The library (against the runtime built with `feature`, in a target
    dir of its own; `aotc_args` added to the compile) and the watch
    program."""
    feature_target = os.path.join(target, feature)
    run(["cargo", "build", "--release", "-q", "-p", "aotc-runtime", "--features", feature,
         "--target-dir", feature_target], cwd=ROOT)
    runtime = os.path.join(feature_target, "release", "libaotc_runtime.a")
    lib = os.path.join(work, "libbench.so")
    run([aotc, model, "-o", lib, *aotc_args], env=dict(os.environ, AOTC_RUNTIME_LIB=runtime))
    loop = os.path.join(work, "bench_loop.o")
    run(["cc", "-O2", "-c", os.path.join(ROOT, "benches", "bench_loop.c"), "-o", loop])
    watch = os.path.join(work, "watch")
    run(["cc", "-O2", "-include", os.path.join(work, "bench.h"), os.path.join(ROOT, "benches", "watch.c"), loop,
         "-o", watch, "-ldl", "-pthread"])
    return lib, watch


def symbols(lib):
    """Address -> name of the library's functions."""
    out = run(["nm", lib], capture_output=True).stdout
    names = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            names[int(parts[0], 16)] = parts[2]
    return names


def parse_times(stderr, names):
    """The dump of one process: kernel name -> [calls, ns, caller wait ns, workers idle ns]."""
    at = {n: a for a, n in names.items()}
    base, rows = None, {}
    for line in stderr.splitlines():
        parts = line.split()
        if parts[:2] == ["aotc-kernel-times", "parallel_for"]:
            base = int(parts[2], 16) - at["aotc_rt_parallel_for"]
        elif parts[:1] == ["aotc-kernel-time"] and base is not None:
            task = int(parts[1], 16) - base
            name = names.get(task, hex(task)).removesuffix("_task")
            if "_forward_" not in name:
                # the runtime's own work when a handle is created (Winograd
                # filters), not a kernel of the runs
                continue
            name = name.split("_forward_", 1)[-1]
            fields = dict(zip(parts[2::2], map(int, parts[3::2])))
            rows[name] = [fields["calls"], fields["ns"], fields["caller_wait_ns"], fields["workers_idle_ns"]]
    return rows


def in_placement(places, placement):
    """Whether a chunk's batches ran in `placement`: at least 19 in 20 of
    them where not in neither (a round trip the host slowed, or that
    changed), and at least 4 in 5 in all."""
    other = {"near": "far", "far": "near"}[placement]
    ours = places.count(placement)
    return ours >= 19 * places.count(other) and ours >= 0.8 * len(places)


def measure(watch, lib, names, threads, placement, seconds, chunk):
    """Kernel totals and (runs, run seconds) over chunks in the placement."""
    totals = collections.defaultdict(lambda: [0, 0, 0, 0])
    runs, run_seconds, tries = 0, 0.0, 0
    while run_seconds < seconds and tries < 3 * seconds / chunk + 3:
        tries += 1
        p = run([watch, lib, "bench", str(threads), str(chunk)], capture_output=True, env=threads_fixed())
        batches = [line.split() for line in p.stdout.splitlines() if line and not line.startswith("#")]
        places = [placement_of(float(b[4]), float(b[4])) for b in batches]
        if threads > 1 and placement and not in_placement(places, placement):
            continue
        for name, row in parse_times(p.stderr, names).items():
            totals[name] = [a + b for a, b in zip(totals[name], row)]
        runs += sum(int(b[2]) for b in batches)
        run_seconds += sum(int(b[2]) * float(b[3]) / 1e3 for b in batches)
    return totals, runs, run_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the .pt2 archive")
    parser.add_argument("--threads", default="1,2", help="thread counts, the first the speed-ups' base")
    parser.add_argument("--placement", choices=["near", "far"], help="keep only chunks run in this placement")
    parser.add_argument("--seconds", type=float, default=10, help="run time to measure per thread count")
    parser.add_argument("--chunk", type=float, default=2, help="seconds per watch process")
    parser.add_argument("--top", type=int, default=30)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    parser.add_argument("--aotc", default=os.path.join(target, "release", "aotc"))
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as work:
        lib, watch = build(work, args.model, args.aotc, target)
        names = symbols(lib)
        results = []
        for t in counts:
            totals, runs, run_seconds = measure(watch, lib, names, t, args.placement, args.seconds, args.chunk)
            if runs == 0:
                sys.exit(f"kernel_times: no chunk at {t} threads ran {args.placement}")
            results.append((totals, runs, run_seconds))
    per_run = [{k: [v[0] / runs, v[1] / runs / 1e3, (v[2] + v[3]) / runs / 1e3] for k, v in totals.items()}
               for totals, runs, _ in results]
    first = per_run[0]
    head = f"{'kernel':<16} {'calls':>5}" + "".join(f" {f'{t} thr us':>10}" for t in counts)
    head += "".join(f" {f'x{t}':>6}" for t in counts[1:]) + f" {'waits us':>8}"
    print(f"# {args.model}: microseconds per run" + (f", {args.placement} at several threads" if args.placement else ""))
    print(head)
    for name in sorted(first, key=lambda k: -first[k][1])[:args.top]:
        times = [r.get(name, [0, 0, 0])[1] for r in per_run]
        line = f"{name:<16} {first[name][0]:>5.1f}" + "".join(f" {x:>10.1f}" for x in times)
        line += "".join(f" {times[0] / x:>6.2f}" if x else f" {'-':>6}" for x in times[1:])
        print(line + f" {per_run[-1].get(name, [0, 0, 0])[2]:>8.1f}")
    kernels = [sum(v[1] for v in r.values()) for r in per_run]
    runs_us = [s / n * 1e6 for _, n, s in results]
    print(f"{'kernels':<16} {'':>5}" + "".join(f" {x:>10.1f}" for x in kernels))
    print(f"{'rest':<16} {'':>5}" + "".join(f" {r - k:>10.1f}" for r, k in zip(runs_us, kernels)))
    print(f"{'run':<16} {'':>5}" + "".join(f" {x:>10.1f}" for x in runs_us)
          + "".join(f" {runs_us[0] / x:>6.2f}" for x in runs_us[1:]))


if __name__ == "__main__":
    main()
