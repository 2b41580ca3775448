"""Side-by-side latency: the library aotc generates vs ONNX Runtime vs
PyTorch eager, on the same machine, in one process per (benchmark, threads).

Usage: python benches/side_by_side.py [--threads 1,2] [--rounds 5] [--only NAME,...] [--work DIR]
(benches/run.sh sets everything up and runs it.)

The set: whole models (SimpleNet, an MLP with GELU, resnet18, mobilenet_v2,
mobilenet_v3_small, efficientnet_b0, convnext_tiny, BERT, GPT-2 small
without its LM head, scaled_dot_product_attention) and single ops as micro
benchmarks, random weights, no downloads; any model of the zoo as
`zoo_NAME` (tools/export_zoo.py's models and inputs, by --only). For each:
the program is exported with torch.export and compiled by aotc, and
exported to ONNX with torch.onnx.export(dynamo=True). Then one process per
(benchmark, thread count) times, in interleaved rounds (each starting with
another runtime, samples PAUSE_S apart):
  aotc   the library's generic `run` on preallocated buffers, in a C loop
         (benches/bench_loop.c), as a C program calls it;
  eager  the module under torch.inference_mode(), torch.set_num_threads(N);
  ORT    an InferenceSession (ORT_ENABLE_ALL, intra_op_num_threads=N) run
         with preallocated, bound inputs and outputs.
Every output is checked against eager. Printed: median and min latency of
each, and the ratios ORT/aotc and eager/aotc (above 1: aotc is faster),
medians over rounds of per-round medians. aotc's compile seconds are
measured once per benchmark. The machine is shared and noisy: compare the
ratios of one run, not absolute times across runs. "x-core ns" is the
least and the most time a cache line took from one core to another and
back, measured between every two samples (bench_loop.c). On the
2-vCPU VMs this is developed on the host moves the vCPUs every few seconds
between sharing a last-level cache ("near", ~55-75 ns) and not ("far",
~310-500 ns), and the 2-thread times of each runtime depend on it, each in
its own way (interleaved runs at 2 threads, near vs far: aotc's resnet18
16.2 vs 26.6 ms, ORT's 18.8 vs 19.8; ORT's mobilenet_v2 5.1 vs 7.8, aotc's
4.4 vs 4.8). "near/far" is ORT/aotc over the rounds in which both ran near,
and over those both ran far, with the rounds' count.
"steal %" is the share of the CPUs' time during the row's rounds that the
hypervisor gave to others (/proc/stat; "-" where there is none to read): a
row with steal is a row of a busy host, whatever its ratios say.
"""
import argparse
import ctypes
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
AOTC = os.environ.get("AOTC_BIN", os.path.join(TARGET, "release", "aotc"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from export_op_suite import Fn  # noqa: E402  (a module whose forward is a function)
import export_zoo  # noqa: E402
from placement import placement_of  # noqa: E402


def randn(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def simple_net():
    import export_simple_net
    return export_simple_net.SimpleNet(), (randn(1, 3, 32, 32),)


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(1024, 4096)
        self.down = torch.nn.Linear(4096, 1024)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


class HF(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(ids).last_hidden_state


def bert():
    from transformers import BertConfig, BertModel
    cfg = BertConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                     vocab_size=1000, max_position_embeddings=128, attn_implementation="sdpa")
    ids = torch.randint(0, 1000, (1, 128), generator=torch.Generator().manual_seed(1))
    return HF(BertModel(cfg)), (ids,)


def gpt2():
    from transformers import GPT2Config, GPT2Model
    ids = torch.randint(0, 50257, (1, 128), generator=torch.Generator().manual_seed(1))
    return HF(GPT2Model(GPT2Config(attn_implementation="sdpa"))), (ids,)


def vision(name):
    import torchvision
    return lambda: (getattr(torchvision.models, name)(weights=None), (randn(1, 3, 224, 224),))


def op(fn, *inputs):
    return lambda: (Fn(fn), inputs)


def module(m, *inputs):
    return lambda: (m(), inputs)


class MatmulWeight(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(randn(1024, 1024) / 32)

    def forward(self, x):
        return torch.mm(x, self.w)


ELEMENTS = (1200, 1024)  # 1.2 M elements
# name: (builder, FLOPs per run or None)
BENCHMARKS = {
    "simple_net": (simple_net, None),
    "mlp_gelu_b32": (module(MLP, randn(32, 1024)), 2 * 32 * 1024 * 4096 * 2),
    "resnet18": (vision("resnet18"), None),
    "mobilenet_v2": (vision("mobilenet_v2"), None),
    "mobilenet_v3_small": (vision("mobilenet_v3_small"), None),
    "efficientnet_b0": (vision("efficientnet_b0"), None),
    "convnext_tiny": (vision("convnext_tiny"), None),
    "bert_h256_l4_s128": (bert, None),
    "gpt2_s128": (gpt2, None),
    "sdpa_1x12x128x64": (op(F.scaled_dot_product_attention, randn(1, 12, 128, 64), randn(1, 12, 128, 64), randn(1, 12, 128, 64)),
                         4 * 12 * 128 * 128 * 64),
    "bmm_12x128x64x128": (op(torch.bmm, randn(12, 128, 64), randn(12, 64, 128)), 2 * 12 * 128 * 64 * 128),
    "gelu_erf": (op(F.gelu, randn(*ELEMENTS)), None),
    "gelu_tanh": (op(lambda x: F.gelu(x, approximate="tanh"), randn(*ELEMENTS)), None),
    "silu": (op(F.silu, randn(*ELEMENTS)), None),
    "softmax": (op(lambda x: F.softmax(x, -1), randn(*ELEMENTS)), None),
    "layer_norm": (module(lambda: torch.nn.LayerNorm(1024), randn(*ELEMENTS)), None),
    "relu": (op(torch.relu, randn(*ELEMENTS)), None),
    "depthwise5x5_s2": (module(lambda: torch.nn.Conv2d(240, 240, 5, 2, 2, groups=240), randn(1, 240, 28, 28)), 2 * 240 * 14 * 14 * 25),
    "depthwise7x7": (module(lambda: torch.nn.Conv2d(96, 96, 7, 1, 3, groups=96), randn(1, 96, 56, 56)), 2 * 96 * 56 * 56 * 49),
    "conv3x3_256_14": (module(lambda: torch.nn.Conv2d(256, 256, 3, 1, 1), randn(1, 256, 14, 14)), 2 * 256 * 256 * 9 * 196),
    "conv3x3_256_16": (module(lambda: torch.nn.Conv2d(256, 256, 3, 1, 1), randn(1, 256, 16, 16)), 2 * 256 * 256 * 9 * 256),
    "linear_49x768": (module(lambda: torch.nn.Linear(768, 768), randn(49, 768)), 2 * 49 * 768 * 768),
    "linear_64x768": (module(lambda: torch.nn.Linear(768, 768), randn(64, 768)), 2 * 64 * 768 * 768),
    "matmul_256x1024x1024": (module(MatmulWeight, randn(256, 1024)), 2 * 256 * 1024 * 1024),
}


# Any model of the zoo (tools/export_zoo.py) by its name after this prefix,
# with the zoo's inputs: `--only zoo_vit_b_16,zoo_swin`. Not in the default set.
ZOO = "zoo_"


def build(name):
    torch.manual_seed(0)
    if name.startswith(ZOO):
        make_model, make_inputs = export_zoo.MODELS[name[len(ZOO):]]
        return make_model(), make_inputs()
    model, inputs = BENCHMARKS[name][0]()
    return model.eval(), inputs


def flat(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for o in outputs for t in flat(o)]


def prepare(name, work):
    """Exports the benchmark (pt2 and ONNX) and compiles it with aotc."""
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    model, inputs = build(name)
    with torch.no_grad():
        ep = torch.export.export(model, inputs)
    torch.export.save(ep, os.path.join(d, "model.pt2"))
    info = {"onnx": None, "compile_s": None}
    # onnxscript's constant folding warns when it cannot fold a node ("Evaluation
    # failed: cannot reshape array of size 1 ...", twice for BERT) and keeps the
    # node unfolded; the exported model is still right (checked against eager).
    logging.getLogger("onnxscript.optimizer._constant_folding").setLevel(logging.ERROR)
    try:
        torch.onnx.export(model, inputs, os.path.join(d, "model.onnx"), dynamo=True, verbose=False)
        info["onnx"] = os.path.join(d, "model.onnx")
    except Exception as e:  # noqa: BLE001 (a failed export is reported, not fatal)
        info["onnx_error"] = str(e).splitlines()[0][:200]
    start = time.time()
    proc = subprocess.run([AOTC, os.path.join(d, "model.pt2"), "-o", os.path.join(d, "libbench.so")], capture_output=True, text=True)
    info["compile_s"] = time.time() - start
    if proc.returncode != 0:
        info["aotc_error"] = proc.stderr.strip().splitlines()[0][:300]
    return info


class AotcRunner:
    """The generated library's generic run, called from a C loop."""

    class Api(ctypes.Structure):
        _fields_ = [("abi_version", ctypes.c_uint32)] + [(n, ctypes.c_void_p) for n in
                    ("create", "free", "num_inputs", "num_outputs", "input_info", "output_info", "run", "last_error",
                     "set_num_threads", "num_threads")]

    def __init__(self, lib_path, loop_path, inputs, outputs_like, threads):
        self.lib = ctypes.CDLL(lib_path)
        self.loop = ctypes.CDLL(loop_path)
        self.loop.aotc_bench_loop.restype = ctypes.c_double
        api_fn = getattr(self.lib, "bench_api")
        api_fn.restype = ctypes.POINTER(AotcRunner.Api)
        self.api = api_fn().contents
        create = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p))(self.api.create)
        self.model = ctypes.c_void_p()
        if create(ctypes.byref(self.model)) != 0:
            raise RuntimeError("aotc create failed")
        set_threads = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)(self.api.set_num_threads)
        if set_threads(self.model, threads) != 0:
            raise RuntimeError("aotc set_num_threads failed")
        self.inputs = [np.ascontiguousarray(x) for x in inputs]
        self.outputs = [np.empty_like(o) for o in outputs_like]
        n_in, n_out = len(self.inputs), len(self.outputs)
        self.in_ptrs = (ctypes.c_void_p * max(n_in, 1))(*[x.ctypes.data for x in self.inputs])
        self.in_bytes = (ctypes.c_size_t * max(n_in, 1))(*[x.nbytes for x in self.inputs])
        self.out_ptrs = (ctypes.c_void_p * max(n_out, 1))(*[o.ctypes.data for o in self.outputs])
        self.out_bytes = (ctypes.c_size_t * max(n_out, 1))(*[o.nbytes for o in self.outputs])

    def time(self, runs):
        t = self.loop.aotc_bench_loop(ctypes.c_void_p(self.api.run), self.model, self.in_ptrs, self.in_bytes,
                                      self.out_ptrs, self.out_bytes, ctypes.c_int(runs))
        if t < 0:
            raise RuntimeError("aotc run failed")
        return t


class OrtRunner:
    def __init__(self, path, inputs, outputs_like, threads):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.binding = self.session.io_binding()
        self.inputs = [np.ascontiguousarray(x) for x in inputs]
        for meta, x in zip(self.session.get_inputs(), self.inputs):
            self.binding.bind_cpu_input(meta.name, x)
        self.outputs = [np.empty_like(o) for o in outputs_like]
        for meta, o in zip(self.session.get_outputs(), self.outputs):
            self.binding.bind_output(meta.name, "cpu", 0, o.dtype, o.shape, o.ctypes.data)

    def time(self, runs):
        start = time.perf_counter()
        for _ in range(runs):
            self.session.run_with_iobinding(self.binding)
        return (time.perf_counter() - start) / runs


class EagerRunner:
    def __init__(self, model, inputs):
        self.model, self.inputs = model, inputs

    def time(self, runs):
        with torch.inference_mode():
            start = time.perf_counter()
            for _ in range(runs):
                self.model(*self.inputs)
            return (time.perf_counter() - start) / runs


# Seconds between two runners' samples (see worker).
PAUSE_S = 0.2


def sample(runner, target_s=0.02, samples=7):
    """Per-run seconds of `samples` samples, each about target_s long."""
    once = runner.time(1)
    runs = max(1, int(target_s / max(once, 1e-7)))
    runner.time(max(1, runs // 4))  # warm up
    return [runner.time(runs) for _ in range(samples)]


def max_error(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    return float(np.abs(got - want).max() / max(1.0, np.abs(want).max()))


def worker(name, threads, rounds, work):
    """Times one benchmark at one thread count; prints one JSON line."""
    torch.set_num_threads(threads)
    d = os.path.join(work, name)
    info = json.load(open(os.path.join(d, "info.json")))
    model, inputs = build(name)
    with torch.inference_mode():
        reference = [t.numpy() for t in flat(model(*inputs))]
    np_inputs = [t.numpy() for t in inputs]
    runners, result = {}, {"name": name, "threads": threads, "errors": {}}
    runners["eager"] = EagerRunner(model, inputs)
    if "aotc_error" not in info:
        runners["aotc"] = AotcRunner(os.path.join(d, "libbench.so"), os.path.join(work, "libbench_loop.so"), np_inputs, reference, threads)
        runners["aotc"].time(1)
        result["errors"]["aotc"] = max(max_error(g, w) for g, w in zip(runners["aotc"].outputs, reference))
    if info.get("onnx"):
        try:
            runners["ort"] = OrtRunner(info["onnx"], np_inputs, reference, threads)
            runners["ort"].time(1)
            result["errors"]["ort"] = max(max_error(g, w) for g, w in zip(runners["ort"].outputs, reference))
        except Exception as e:  # noqa: BLE001
            result["ort_error"] = str(e).splitlines()[0][:200]
            runners.pop("ort", None)
    trips = []
    steal_before, wall_before = steal_seconds(), time.monotonic()
    per_round = {k: [] for k in runners}
    placement = {k: [] for k in runners}
    all_samples = {k: [] for k in runners}
    order = list(runners)
    timed = []  # the runners in the order sampled: sample i ran between trips i and i + 1
    for r in range(rounds):
        # each round starts with another runner, and each sample starts after
        # a pause: a runtime's threads spin for a while after its runs (torch's
        # OpenMP pool, ORT's) and would take the cores of the one timed next
        # (and the round trip's threads: it is measured after the pause)
        for key in order[r % len(order):] + order[:r % len(order)]:
            runner = runners[key]
            time.sleep(PAUSE_S)
            trips.append(round_trip_ns(work, QUICK_TRIPS))
            s = sample(runner)
            timed.append(key)
            per_round[key].append(statistics.median(s))
            all_samples[key].extend(s)
    time.sleep(PAUSE_S)
    trips.append(round_trip_ns(work, QUICK_TRIPS))
    for i, key in enumerate(timed):
        placement[key].append(placement_of(trips[i], trips[i + 1]))
    steal_after, wall = steal_seconds(), time.monotonic() - wall_before
    if steal_before is not None and steal_after is not None:
        result["steal_percent"] = 100 * (steal_after - steal_before) / (wall * (os.cpu_count() or 1))
    measured = [t for t in trips if t >= 0]
    result["round_trip_ns"] = [min(measured), max(measured)] if measured else []
    for key in runners:
        result[key] = {"median": statistics.median(per_round[key]), "min": min(all_samples[key])}
    for key in ("eager", "ort"):
        if key in per_round and "aotc" in per_round:
            pairs = list(zip(per_round[key], per_round["aotc"], placement[key], placement["aotc"]))
            result[f"{key}/aotc"] = statistics.median(t / a for t, a, _, _ in pairs)
            for where in ("near", "far"):
                same = [t / a for t, a, pt, pa in pairs if pt == pa == where]
                if same:
                    result[f"{key}/aotc {where}"] = statistics.median(same)
                    result[f"{key}/aotc {where} rounds"] = len(same)
    print(json.dumps(result))


def steal_seconds():
    """The CPU time the hypervisor has given to others since boot, summed
    over the CPUs (the 8th field of /proc/stat's "cpu" line), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def round_trip_ns(work, trips):
    """The cores' cache-line round trip now (ns, median of 3 times `trips`),
    or -1."""
    loop = ctypes.CDLL(os.path.join(work, "libbench_loop.so"))
    loop.aotc_bench_round_trip_ns.restype = ctypes.c_double
    loop.aotc_bench_round_trip_ns.argtypes = [ctypes.c_long]
    return statistics.median(loop.aotc_bench_round_trip_ns(trips) for _ in range(3))


# Round trips measured between two samples (a few ms at most).
QUICK_TRIPS = 2_000


def fmt_time(entry):
    if not entry:
        return f"{'-':>10} {'-':>10}"
    return f"{entry['median'] * 1e3:>9.3f}m {entry['min'] * 1e3:>9.3f}m"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only")
    parser.add_argument("--work")
    parser.add_argument("--worker", nargs=3, metavar=("NAME", "THREADS", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, threads, work = args.worker
        worker(name, int(threads), args.rounds, work)
        return
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    work = args.work or tempfile.mkdtemp(prefix="aotc-bench-")
    os.makedirs(work, exist_ok=True)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-pthread", os.path.join(ROOT, "benches", "bench_loop.c"),
                    "-o", os.path.join(work, "libbench_loop.so")], check=True)
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    for name in names:
        info = prepare(name, work)
        with open(os.path.join(work, name, "info.json"), "w") as f:
            json.dump(info, f)
        for t in threads:
            proc = subprocess.run([sys.executable, __file__, "--rounds", str(args.rounds), "--worker", name, str(t), work],
                                  capture_output=True, text=True)
            line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                result = {"name": name, "threads": t, "failed": proc.stderr.strip().splitlines()[-1:] or ["?"]}
            result["info"] = info
            rows.append(result)
            print_row(result, header=len(rows) == 1)
    print(f"\n{platform_line()}")


def print_row(r, header=False):
    if header:
        print(f"{'benchmark':<22} {'thr':>3} {'aotc med/min':>21} {'ORT med/min':>21} {'eager med/min':>21} "
              f"{'ORT/aotc':>8} {'near/far':>15} {'eager/aotc':>10} {'GFLOP/s':>8} {'compile s':>9} {'x-core ns':>9} {'steal %':>7}  errors")
    info = r.get("info", {})
    if "failed" in r:
        print(f"{r['name']:<22} {r['threads']:>3} failed: {r['failed'][0][:150]}")
        return
    flops = BENCHMARKS.get(r["name"], (None, None))[1]
    gflops = f"{flops / r['aotc']['median'] / 1e9:>8.1f}" if flops and r.get("aotc") else f"{'':>8}"
    errors = ", ".join(f"{k} {v:.1e}" for k, v in r.get("errors", {}).items())
    notes = "; ".join(x for x in [info.get("aotc_error"), info.get("onnx_error"), r.get("ort_error")] if x)
    ratio = lambda k: f"{r[k]:.2f}" if k in r else "-"
    compile_s = f"{info['compile_s']:.1f}" if info.get("compile_s") is not None else "-"
    trips = "/".join(f"{t:.0f}" if t >= 0 else "-" for t in r.get("round_trip_ns", []))
    steal = f"{r['steal_percent']:.1f}" if "steal_percent" in r else "-"
    # ORT/aotc over the rounds both ran with the cores near, and far (the rounds' count)
    by_place = "/".join(f"{r[f'ort/aotc {w}']:.2f}({r[f'ort/aotc {w} rounds']})" if f"ort/aotc {w}" in r else "-" for w in ("near", "far"))
    print(f"{r['name']:<22} {r['threads']:>3} {fmt_time(r.get('aotc'))} {fmt_time(r.get('ort'))} {fmt_time(r.get('eager'))} "
          f"{ratio('ort/aotc'):>8} {by_place:>15} {ratio('eager/aotc'):>10} {gflops} {compile_s:>9} {trips:>9} {steal:>7}  {errors} {notes}", flush=True)


def platform_line():
    import platform
    import onnxruntime
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"machine: {cpu}, {os.cpu_count()} CPUs; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
            f"python {platform.python_version()}; times in ms (m), ratios are medians of per-round ratios")


if __name__ == "__main__":
    main()
