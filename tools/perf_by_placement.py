"""Per-kernel time by where the cores were: perf samples of a `benches/watch`
run put in the batch they fell in, and the batches grouped by thread count
and placement (tools/placement.py, from the round trip after each batch).

    perf record -F 1000 -o perf.data /tmp/watch LIB PREFIX 2 60 > watch.txt
    perf script -i perf.data -F tid,time,ip,sym > samples.txt
    python tools/perf_by_placement.py watch.txt samples.txt --hz 1000

Prints, for each symbol, its thread-milliseconds per run in each group
(samples per run / Hz: summed over the threads), largest difference first.
The first kernel sample is taken as the watch's start (its batches' times
count from its first run).
"""
import argparse
import bisect
import collections

from placement import placement_of


def batches_of(path):
    """(start s, end s, runs, group) per batch of a watch: its runs' span
    (not the round trip measured after them) and its thread count and
    placement, or None when the placement is neither."""
    out = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        start, threads, runs, ms, trip = line.split()[:5]
        start, runs, ms, trip = float(start), int(runs), float(ms), float(trip)
        place = placement_of(trip, trip)
        out.append((start, start + runs * ms / 1e3, runs, f"{threads} thr {place}" if place else None))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("watch")
    parser.add_argument("samples")
    parser.add_argument("--hz", type=float, default=1000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    batches = batches_of(args.watch)
    starts = [b[0] for b in batches]
    counts = collections.defaultdict(collections.Counter)
    first = None
    for line in open(args.samples):
        fields = line.split()
        if len(fields) < 4:
            continue
        t, symbol = float(fields[1].rstrip(":")), fields[3]
        if first is None and "_forward_k" in symbol:
            first = t
        if first is None:
            continue
        i = bisect.bisect_right(starts, t - first) - 1
        if i >= 0 and batches[i][3] and t - first < batches[i][1]:
            counts[batches[i][3]][symbol] += 1
    runs = collections.Counter()
    for _, _, n, group in batches:
        if group:
            runs[group] += n
    groups = sorted(g for g in counts if runs[g] > 0)
    per_run = {g: {s: c / runs[g] / args.hz * 1e3 for s, c in counts[g].items()} for g in groups}
    print(f"{'symbol':<44}" + "".join(f"{g:>14}" for g in groups))
    print(f"{'runs':<44}" + "".join(f"{runs[g]:>14.0f}" for g in groups))
    print(f"{'all':<44}" + "".join(f"{sum(per_run[g].values()):>14.2f}" for g in groups))
    symbols = {s for g in groups for s in per_run[g]}
    spread = lambda s: max(per_run[g].get(s, 0) for g in groups) - min(per_run[g].get(s, 0) for g in groups)
    for s in sorted(symbols, key=spread, reverse=True)[: args.top]:
        print(f"{s[:44]:<44}" + "".join(f"{per_run[g].get(s, 0):>14.3f}" for g in groups))


if __name__ == "__main__":
    main()
