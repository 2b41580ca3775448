"""The 2-thread speed-up of a `benches/watch` run alternating 1 and 2
threads (THREADS 0), near and far: the median 1-thread batch time over the
median 2-thread batch time among the batches of each placement (placed as
`tools/perf_by_placement.py` places them).

    /tmp/watch LIB PREFIX 0 60 > watch.txt
    python tools/watch_speedups.py watch.txt

Prints, per placement, both medians (ms per run), the batches behind each
and the speed-up.
"""
import argparse
import statistics

from perf_by_placement import batches_of


def speedups(batches):
    """{placement: (1-thread median ms, batches, 2-thread median ms,
    batches)} for the placements with batches at both thread counts."""
    times = {}
    for start, end, runs, group in batches:
        if group:
            times.setdefault(group, []).append((end - start) * 1e3 / runs)
    out = {}
    for place in ("near", "far"):
        one, two = times.get(f"1 thr {place}"), times.get(f"2 thr {place}")
        if one and two:
            out[place] = (statistics.median(one), len(one), statistics.median(two), len(two))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("watch")
    args = parser.parse_args()
    found = speedups(batches_of(args.watch))
    if not found:
        print("no placement has batches at both 1 and 2 threads")
    for place, (one, n1, two, n2) in found.items():
        print(f"{place}: 1 thread {one:.3f} ms ({n1} batches), 2 threads {two:.3f} ms ({n2}), speed-up {one / two:.2f}")


if __name__ == "__main__":
    main()
