"""Where the two cores were while something ran, from the cache-line round
trip between them (benches/bench_loop.c) measured before and after it: the
benchmark harness (benches/side_by_side.py) and tools/perf_by_placement.py
classify by this one rule (benches/bench_loop.c's aotc_bench_placement is
the same rule for benches/ab.c and benches/cross_core.c).

Below NEAR_NS the two vCPUs share a last-level cache ("near"); from FAR_NS
they do not ("far"). On the development VMs the host moves them between the
two every few seconds: ~55-75 ns against ~310-500 ns, rarely between.
Beyond FAR_MAX_NS a thread shared its CPU with another (a runtime's pool
still spinning, the host's other work): no placement.
"""
NEAR_NS, FAR_NS, FAR_MAX_NS = 150, 200, 1000


def placement_of(before, after):
    """Where the cores were between two round trips (ns; -1: one CPU):
    "near", "far", or None (it changed, a thread shared its CPU, or there is
    one CPU)."""
    if 0 <= before < NEAR_NS and 0 <= after < NEAR_NS:
        return "near"
    if FAR_NS <= min(before, after) and max(before, after) <= FAR_MAX_NS:
        return "far"
    return None
