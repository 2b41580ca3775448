"""Hostile and oversized archives: the fixtures of aotc's never-run-a-stranger's-code
and resource-limit tests. Every string in an archive is attacker-controlled,
and so is every size it claims.

Usage: python tools/export_hostile.py OUT_DIR

Writes into OUT_DIR:
  hostile/<kind>.pt2, hostile/input.npy, hostile/output_0.npy
      one small program (linear + relu) per kind of hostile name: its user
      input, node names, parameter name, stack-trace file and every other
      name replaced by that string (C string and comment breakers, assembler
      directives, newlines, %, NUL, 64 KiB). Compiled, it must compute what
      torch computed, and nothing in it may run. hostile/kinds.txt lists them.
  hostile/bad_utf8.pt2      a model.json with bytes that are not UTF-8
  hostile/path_traversal.pt2  a weight whose file is ../../../../etc/hostname
  limits/*.pt2              archives that claim more than they hold
  inconsistent/*.pt2        graphs whose declared result types disagree with their operands
"""
import io
import json
import os
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch

# The marker file a successful injection would create (tests check it is absent).
MARKER = "/tmp/aotc-hostile-marker"

HOSTILE = {
    "c_string": 'x", 0}; __attribute__((constructor)) static void pwn(void) { system("touch ' + MARKER + '"); } static const char *q[] = {"',
    "c_comment": 'x */ __attribute__((constructor)) static void pwn(void) { system("touch ' + MARKER + '"); } /*',
    "backslash": 'x\\" \\\\ \\x41 \\',
    "newline": 'x\n#include "/etc/hostname"\n.incbin "/etc/hostname"\n',
    "assembler": '"\n.incbin "/etc/hostname"\n.ascii "',
    "percent": "%s%n%x%p%08x",
    "nul": "x\u0000y",
    "mlir": '"} : () -> () loc(unknown)\n func.func @evil() {',
    "unicode": "\u00e9\u2028\u202e\U0001f600",
    "long": "n" * 65536,
}


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.relu(self.lin(x)) + x.sum()


def rewrite(src, dst, edit, compress=zipfile.ZIP_STORED):
    """Copies a zip, letting `edit(name, bytes)` change entries (None drops one)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compress) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def model_json_name(path):
    with zipfile.ZipFile(path) as z:
        return next(n for n in z.namelist() if n.endswith(".json") and "/models/" in n)


def rename_everything(program, new):
    """Every name in the program (tensor, node, parameter, file) made hostile."""
    text = json.dumps(program)
    for old, suffix in [("\"x\"", ""), ("\"p_lin_weight\"", "_w"), ("\"p_lin_bias\"", "_b"), ("\"linear\"", "_linear"),
                        ("\"relu\"", "_relu"), ("\"sum_1\"", "_sum"), ("\"add\"", "_add"), ("\"lin.weight\"", "_lw"),
                        ("\"lin.bias\"", "_lb")]:
        text = text.replace(old, json.dumps(new + suffix))
    program = json.loads(text)
    for node in program["graph_module"]["graph"]["nodes"]:
        trace = node.get("metadata", {}).get("stack_trace")
        if trace:
            node["metadata"]["stack_trace"] = f'File "{new}", line 7, in forward\n    {new}\n'
    return program


def hostile_programs(out_dir):
    d = os.path.join(out_dir, "hostile")
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    model = Small().eval()
    x = torch.randn(2, 4)
    base = os.path.join(d, "base.pt2")
    torch.export.save(torch.export.export(model, (x,)), base)
    np.save(os.path.join(d, "input.npy"), x.numpy())
    with torch.no_grad():
        np.save(os.path.join(d, "output_0.npy"), model(x).numpy())
    json_name = model_json_name(base)

    def weights_config(name, data, new):
        if not name.endswith("_weights_config.json"):
            return data
        text = data.decode().replace("\"lin.weight\"", json.dumps(new + "_lw")).replace("\"lin.bias\"", json.dumps(new + "_lb"))
        return text.encode()

    for kind, new in HOSTILE.items():
        def edit(name, data, new=new):
            if name == json_name:
                return json.dumps(rename_everything(json.loads(data), new)).encode()
            return weights_config(name, data, new)
        rewrite(base, os.path.join(d, f"{kind}.pt2"), edit)
    with open(os.path.join(d, "kinds.txt"), "w") as f:
        f.write("\n".join(HOSTILE) + "\n")

    # bytes that are not UTF-8 inside a name
    rewrite(base, os.path.join(d, "bad_utf8.pt2"),
            lambda name, data: data.replace(b'"x"', b'"x\xff\xfe"') if name == json_name else data)

    # a weight file outside the archive
    def traversal(name, data):
        if name.endswith("_weights_config.json"):
            config = json.loads(data)
            for entry in config["config"].values():
                entry["path_name"] = "../../../../../../etc/hostname"
            return json.dumps(config).encode()
        return data
    rewrite(base, os.path.join(d, "path_traversal.pt2"), traversal)


def stored_zip(path, entries):
    """A zip of STORED entries whose directory declares `declared` bytes for
    each (name, data, declared) — a ZIP64 size field when it is large —
    whatever the data really is."""
    out = io.BytesIO()
    central = []
    for name, data, declared in entries:
        offset = out.tell()
        crc = zlib.crc32(data)
        zip64 = declared >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, declared, len(data)) if zip64 else b""
        size32 = 0xFFFFFFFF if zip64 else declared
        csize32 = 0xFFFFFFFF if zip64 else len(data)
        name_b = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, csize32, size32, len(name_b), len(extra)))
        out.write(name_b + extra + data)
        central.append((name_b, crc, csize32, size32, extra, offset))
    start = out.tell()
    for name_b, crc, csize32, size32, extra, offset in central:
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, csize32, size32,
                              len(name_b), len(extra), 0, 0, 0, 0, offset))
        out.write(name_b + extra)
    size = out.tell() - start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), size, start, 0))
    with open(path, "wb") as f:
        f.write(out.getvalue())


def entries_of(path):
    with zipfile.ZipFile(path) as z:
        return [(n, z.read(n)) for n in z.namelist()]


class WithBuffer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.ones(4))

    def forward(self, x):
        return x + self.b.sum()


def limits(out_dir):
    d = os.path.join(out_dir, "limits")
    os.makedirs(d, exist_ok=True)
    x = torch.randn(2, 4)
    base = os.path.join(d, "base.pt2")
    torch.export.save(torch.export.export(WithBuffer().eval(), (x,)), base)
    entries = entries_of(base)
    json_name = model_json_name(base)

    # 1. a directory entry that declares 2^40 bytes for model.json
    stored_zip(os.path.join(d, "declared_2e40.pt2"), [(n, b, (1 << 40) if n == json_name else len(b)) for n, b in entries])

    # 2. a deflate bomb: a 2 GiB weight file that compresses to about 2 MB
    with zipfile.ZipFile(os.path.join(d, "bomb_weight.pt2"), "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in entries:
            if "/data/weights/" in n and not n.endswith(".json"):
                with z.open(n, "w", force_zip64=True) as f:
                    chunk = bytes(1 << 24)
                    for _ in range(128):
                        f.write(chunk)
            else:
                z.writestr(n, b)

    # 3. the same bomb inside the sample inputs: a torch.save zip whose
    # tensor storage is 2 GiB of compressed zeros
    saved = io.BytesIO()
    torch.save(((torch.zeros(2, 4),), {}), saved)
    bombed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved.getvalue())) as zi, zipfile.ZipFile(bombed, "w", zipfile.ZIP_DEFLATED) as zo:
        for n in zi.namelist():
            if n.endswith("/data/0"):
                with zo.open(n, "w", force_zip64=True) as f:
                    chunk = bytes(1 << 24)
                    for _ in range(128):
                        f.write(chunk)
            else:
                zo.writestr(n, zi.read(n))
    with zipfile.ZipFile(os.path.join(d, "bomb_sample.pt2"), "w") as z:
        for n, b in entries:
            z.writestr(n, bombed.getvalue() if "/data/sample_inputs/" in n else b)

    # 4. a buffer of 2^30 elements stored in 4 bytes (all strides 0), and 5. 2^37
    for tag, side in [("stride0_4gib", 1 << 15), ("stride0_128gib", 1 << 18)]:
        def edit(name, data, side=side):
            if name == json_name:
                program = json.loads(data)
                meta = program["graph_module"]["graph"]["tensor_values"]["b_b"]
                meta["sizes"] = [{"as_int": side}, {"as_int": side // 2 if side > 1 << 15 else side}]
                meta["strides"] = [{"as_int": 0}, {"as_int": 0}]
                return json.dumps(program).encode()
            if name.endswith("_constants_config.json") or name.endswith("_weights_config.json"):
                config = json.loads(data)
                for entry in config["config"].values():
                    meta = entry["tensor_meta"]
                    meta["sizes"] = [{"as_int": side}, {"as_int": side // 2 if side > 1 << 15 else side}]
                    meta["strides"] = [{"as_int": 0}, {"as_int": 0}]
                return json.dumps(config).encode()
            return data
        rewrite(base, os.path.join(d, f"{tag}.pt2"), edit)

    # 6. a storage offset near i64::MAX
    def offset(name, data):
        if name.endswith("_weights_config.json") or name.endswith("_constants_config.json"):
            config = json.loads(data)
            for entry in config["config"].values():
                entry["tensor_meta"]["storage_offset"] = {"as_int": (1 << 63) - 2}
            return json.dumps(config).encode()
        return data
    rewrite(base, os.path.join(d, "offset_max.pt2"), offset)

    # 7. a user input of 2^40 elements, and 8. of 2^36 bytes (under the shape cap)
    for tag, sizes, dtype in [("input_2e40", [1 << 20, 1 << 20], 7), ("input_2e36", [1 << 18, 1 << 18], 1)]:
        def edit(name, data, sizes=sizes, dtype=dtype):
            if name == json_name:
                program = json.loads(data)
                for t in ("x", "add"):
                    meta = program["graph_module"]["graph"]["tensor_values"][t]
                    meta["sizes"] = [{"as_int": s} for s in sizes]
                    meta["strides"] = [{"as_int": sizes[1]}, {"as_int": 1}]
                    meta["dtype"] = dtype
                return json.dumps(program).encode()
            if "/data/sample_inputs/" in name:
                return None
            return data
        rewrite(base, os.path.join(d, f"{tag}.pt2"), edit)

    # 9. sample inputs whose pickle shares one tuple 2^40 times (a memo bomb),
    # and 10. nests a million tuples
    memo_bomb = b"\x80\x02)q\x00" + b"".join(bytes([0x68, i, 0x68, i, 0x86, 0x71, i + 1]) for i in range(40)) + b"."
    deep = b"\x80\x02)" + b"\x85" * 1_000_000 + b"."
    for tag, pkl in [("pickle_memo_bomb", memo_bomb), ("pickle_deep", deep)]:
        def edit(name, data, pkl=pkl):
            if "/data/sample_inputs/" in name:
                inner = io.BytesIO()
                with zipfile.ZipFile(inner, "w") as zi:
                    zi.writestr("archive/data.pkl", pkl)
                return inner.getvalue()
            return data
        rewrite(base, os.path.join(d, f"{tag}.pt2"), edit)


class Mixed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.conv = torch.nn.Conv2d(2, 3, 3)

    def forward(self, x, i, img):
        return torch.relu(self.lin(x)) + 1, torch.index_select(x, 1, i), self.conv(img), img.permute(0, 2, 3, 1)


def inconsistent(out_dir):
    """Graphs whose declared result types disagree with their operands:
    each must be one error line naming the node (the rules check, or the
    lowered code does not verify), never a panic."""
    d = os.path.join(out_dir, "inconsistent")
    os.makedirs(d, exist_ok=True)
    base = os.path.join(d, "base.pt2")
    torch.export.save(torch.export.export(Mixed().eval(), (torch.randn(2, 4), torch.tensor([0, 3]), torch.randn(1, 2, 6, 6))), base)
    json_name = model_json_name(base)
    for tag, tensor, sizes in [("add_rank", "add", [2, 3, 1]), ("linear_shape", "linear", [2, 5]),
                               ("index_select_rank", "index_select", [2]), ("relu_scalar", "relu", []),
                               ("conv_spatial", "conv2d", [1, 3, 5, 4]), ("permute_shape", "permute", [1, 6, 2, 6])]:
        def edit(name, data, tensor=tensor, sizes=sizes):
            if name == json_name:
                program = json.loads(data)
                meta = program["graph_module"]["graph"]["tensor_values"][tensor]
                meta["sizes"] = [{"as_int": s} for s in sizes]
                meta["strides"] = [{"as_int": 1} for _ in sizes]
                return json.dumps(program).encode()
            return data
        rewrite(base, os.path.join(d, f"{tag}.pt2"), edit)


def main_into(out_dir):
    hostile_programs(out_dir)
    limits(out_dir)
    inconsistent(out_dir)


if __name__ == "__main__":
    main_into(sys.argv[1])
