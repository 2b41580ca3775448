"""Compiles every op-suite case and zoo model with aotc, compares the outputs
with torch's, and prints the tables: per-op variants, the core inference op
coverage ("N of M"), and the zoo with compile times and errors.

Fixtures come from tools/export_op_suite.py (FIXTURES/ops, core_ops.json)
and tools/export_zoo.py (FIXTURES/zoo). Floats pass when
max |got - want| <= tol * max(1, max |want|); integers and bools must match
exactly. Every program runs at several thread counts (ZOO_THREADS,
OP_THREADS) whose outputs must be bitwise identical. Exits with 1 if
anything fails.

Usage: python tools/conformance.py [--ops DIR] [--zoo DIR] [--aotc PATH] [-j N] [--filter SUBSTR]
(DIR as printed by `tools/fixtures.sh ops` and `tools/fixtures.sh zoo`)
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np


def run_case(aotc, directory, threads):
    """Compiles and runs one program at each of the thread counts (`aotc run`
    fails unless the outputs are bitwise identical across them); returns a
    result dict."""
    inputs = []
    k = 0
    while os.path.exists(os.path.join(directory, f"input_{k}.npy")):
        inputs.append(os.path.join(directory, f"input_{k}.npy"))
        k += 1
    with tempfile.TemporaryDirectory() as out:
        cmd = [aotc, "run", os.path.join(directory, "model.pt2"), "--output-dir", out, "--timings", "--threads", threads]
        for i in inputs:
            cmd += ["--input", i]
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - start
        result = {"wall": wall, "compile": None, "run": None}
        m = re.search(r"timings: compile ([0-9.]+) s, run ([0-9.]+) s", proc.stderr)
        if m:
            result["compile"], result["run"] = float(m.group(1)), float(m.group(2))
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
            result["error"] = (errors[0] if errors else proc.stderr.strip()[-300:]) or f"exit {proc.returncode}"
            if len(errors) > 1:
                result["error"] += f" (+{len(errors) - 1} more)"
            return result
        worst = 0.0
        k = 0
        while os.path.exists(os.path.join(directory, f"output_{k}.npy")):
            want = np.load(os.path.join(directory, f"output_{k}.npy"))
            path = os.path.join(out, f"output_{k}.npy")
            if not os.path.exists(path):
                result["error"] = f"output {k} missing"
                return result
            got = np.load(path)
            problem, err = compare(got, want)
            if problem:
                result["error"] = f"output {k}: {problem}"
                return result
            worst = max(worst, err)
            k += 1
        result["max_error"] = worst
        return result


def compare(got, want):
    """(problem or None, scaled max error)."""
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}", 0.0
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}", 0.0
    if want.dtype.kind in "iub":
        bad = np.flatnonzero(got != want)
        if bad.size:
            i = bad[0]
            return f"{bad.size} elements differ, first at {i}: {got.flat[i]} vs {want.flat[i]}", 0.0
        return None, 0.0
    g, w = got.astype(np.float64), want.astype(np.float64)
    nan_mismatch = np.isnan(g) != np.isnan(w)
    if nan_mismatch.any():
        i = np.flatnonzero(nan_mismatch)[0]
        return f"NaN mismatch at {i}: {g.flat[i]} vs {w.flat[i]}", 0.0
    finite = np.isfinite(w)
    inf_mismatch = (~finite & ~np.isnan(w)) & (g != w)
    if inf_mismatch.any():
        i = np.flatnonzero(inf_mismatch)[0]
        return f"inf mismatch at {i}: {g.flat[i]} vs {w.flat[i]}", 0.0
    if not finite.any():
        return None, 0.0
    scale = max(1.0, float(np.abs(w[finite]).max()))
    err = float(np.abs(g[finite] - w[finite]).max()) / scale
    return None, err


# Thread counts each program runs at: the zoo at 1, 2 and 3 (more than this
# machine's cores: the partition must not matter), single ops at 1 and 2.
ZOO_THREADS = "1,2,3"
OP_THREADS = "1,2"


def run_all(aotc, jobs, work, threads):
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_case, aotc, d, threads): key for key, d in work}
        for f in concurrent.futures.as_completed(futures):
            results[futures[f]] = f.result()
    return results


def check(result, tol):
    if "error" in result:
        return False, result["error"]
    if result["max_error"] > tol:
        return False, f"max error {result['max_error']:.3g} > {tol:g}"
    return True, ""


def op_suite(fixtures, aotc, jobs, only):
    root = os.path.join(fixtures, "ops")
    cases = sorted(c for c in os.listdir(root) if only is None or only in c)
    metas = {c: json.load(open(os.path.join(root, c, "meta.json"))) for c in cases}
    work = [((c, form), os.path.join(root, c, form)) for c in cases for form in ("default", "core")]
    results = run_all(aotc, jobs, work, OP_THREADS)
    failures = []
    by_op = {}
    for c in cases:
        meta = metas[c]
        for form in ("default", "core"):
            ok, why = check(results[(c, form)], meta["tolerance"])
            by_op.setdefault(meta["op"], []).append((meta["variant"], form, ok, why))
            if not ok:
                failures.append(f"{c} [{form}]: {why}")
    print("\n## Op suite (each variant in both export forms)\n")
    print(f"{'op':34} {'variants':>8} {'pass':>5} {'fail':>5}")
    for op in sorted(by_op):
        rows = by_op[op]
        variants = len({v for v, _, _, _ in rows})
        passed = sum(ok for _, _, ok, _ in rows)
        print(f"{op:34} {variants:>8} {passed:>5} {len(rows) - passed:>5}")
    total = sum(len(r) for r in by_op.values())
    print(f"\n{len(cases)} programs x 2 forms = {total} runs, {total - len(failures)} passed, {len(failures)} failed")

    # Core coverage: a core op counts when every program that contains it
    # passes. Both forms count: run_decompositions() rewrites some core ops
    # further (reflection_pad1d into index ops, fill into full_like), so
    # they appear only where a program calls them directly.
    core = json.load(open(os.path.join(fixtures, "core_ops.json")))
    seen = {}
    for c in cases:
        for form in ("default", "core"):
            ok, _ = check(results[(c, form)], metas[c]["tolerance"])
            for target in metas[c]["targets"][form]:
                seen.setdefault(target, []).append(ok)
    covered = [op for op in core["included"] if seen.get(op) and all(seen[op])]
    failing = [op for op in core["included"] if seen.get(op) and not all(seen[op])]
    missing = [op for op in core["included"] if op not in seen]
    print(f"\n## Core ATen coverage (torch {core['torch']})\n")
    print(f"{len(covered)} of {len(core['included'])} core inference ops pass "
          f"({len(core['excluded'])} more core ops are left out: backward, random, FFT, data-dependent, symbolic)")
    if failing:
        print("failing: " + ", ".join(failing))
    if missing:
        print("not covered: " + ", ".join(missing))
    return failures


def zoo(fixtures, aotc, jobs, only):
    root = os.path.join(fixtures, "zoo")
    if not os.path.isdir(root):
        return []
    models = sorted(m for m in os.listdir(root) if only is None or only in m)
    work = [((m, form), os.path.join(root, m, form)) for m in models for form in ("default", "core")]
    results = run_all(aotc, jobs, work, ZOO_THREADS)
    failures = []
    print("\n## Model zoo (random weights, fixed inputs)\n")
    print(f"{'model':24} {'form':8} {'compile s':>9} {'run s':>8} {'max|ref|':>9} {'max err':>9} {'tol':>7}  result")
    for m in models:
        meta = json.load(open(os.path.join(root, m, "meta.json")))
        for form in ("default", "core"):
            r = results[(m, form)]
            ok, why = check(r, meta["tolerance"])
            if not ok:
                failures.append(f"zoo {m} [{form}]: {why}")
            comp = f"{r['compile']:.1f}" if r.get("compile") is not None else "-"
            run = f"{r['run']:.3f}" if r.get("run") is not None else "-"
            err = f"{r['max_error']:.1e}" if "max_error" in r else "-"
            scale = f"{meta.get('max_abs_reference', 0):.2g}"
            print(f"{m:24} {form:8} {comp:>9} {run:>8} {scale:>9} {err:>9} {meta['tolerance']:>7.0e}  {'pass' if ok else 'FAIL: ' + why}")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", help="op-suite fixtures (with ops/ and core_ops.json)")
    parser.add_argument("--zoo", help="zoo fixtures (with zoo/)")
    parser.add_argument("--aotc", default=os.environ.get("AOTC_BIN", "aotc"))
    parser.add_argument("--filter")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    failures = []
    if args.ops:
        failures += op_suite(args.ops, args.aotc, args.jobs, args.filter)
    if args.zoo:
        failures += zoo(args.zoo, args.aotc, args.jobs, args.filter)
    if failures:
        print(f"\n{len(failures)} failures:")
        for f in failures:
            print("  " + f)
        sys.exit(1)


if __name__ == "__main__":
    main()
