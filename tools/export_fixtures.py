"""Export every test fixture aotc's tests read, with torch's reference outputs.

Usage: python tools/export_fixtures.py OUT_DIR

Writes into OUT_DIR:
  simple_net.pt2, simple_net_core.pt2, simple_net_input.npy, simple_net_output_K.npy
      SimpleNet in both export forms (see export_simple_net.py)
  simple_net_input_f64.npy
      the same input as float64 (a wrong-dtype input for `aotc run`)
  unsupported_ops.pt2
      a program with ops aotc leaves out (random, FFT, data-dependent shape)
  programs/<name>[_core]/
      small programs for each lowering rule (see export_programs.py)
  bad/not_a_zip.pt2, bad/truncated.pt2, bad/no_model_json.pt2,
  bad/schema_version_99.pt2, bad/weight_size_mismatch.pt2
      broken archives derived from simple_net.pt2
  hostile/, limits/
      archives with hostile names and with oversized claims (see export_hostile.py)
"""
import json
import os
import sys
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_hostile  # noqa: E402
import export_programs  # noqa: E402
import export_simple_net  # noqa: E402


class UnsupportedOps(torch.nn.Module):
    """A random op, a complex FFT and a data-dependent shape: each is reported."""

    def forward(self, x):
        noise = torch.rand_like(x)
        y = torch.fft.rfft(x + noise).abs()
        idx = torch.nonzero(x > 0)
        return y, idx


def rewrite_archive(src, dst, edit):
    """Copies a zip, letting `edit(name, data)` change or drop (None) each entry."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def bad_archives(out_dir):
    good = os.path.join(out_dir, "simple_net.pt2")
    bad = os.path.join(out_dir, "bad")
    os.makedirs(bad, exist_ok=True)
    with open(os.path.join(bad, "not_a_zip.pt2"), "w") as f:
        f.write("this is not a pt2 archive\n")
    data = open(good, "rb").read()
    with open(os.path.join(bad, "truncated.pt2"), "wb") as f:
        f.write(data[: len(data) // 2])
    rewrite_archive(good, os.path.join(bad, "no_model_json.pt2"),
                    lambda name, d: None if name.endswith("models/model.json") else d)

    def schema_99(name, d):
        if name.endswith("models/model.json"):
            program = json.loads(d)
            program["schema_version"]["major"] = 99
            return json.dumps(program)
        return d
    rewrite_archive(good, os.path.join(bad, "schema_version_99.pt2"), schema_99)
    # fc1.weight is weight_2: drop its last 8 bytes.
    rewrite_archive(good, os.path.join(bad, "weight_size_mismatch.pt2"),
                    lambda name, d: d[:-8] if name.endswith("data/weights/weight_2") else d)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    export_simple_net.export(out_dir)
    export_programs.export(out_dir)
    x = np.load(os.path.join(out_dir, "simple_net_input.npy"))
    np.save(os.path.join(out_dir, "simple_net_input_f64.npy"), x.astype(np.float64))
    x = torch.randn(2, 8)
    ep = torch.export.export(UnsupportedOps(), (x,))
    torch.export.save(ep, os.path.join(out_dir, "unsupported_ops.pt2"))
    bad_archives(out_dir)
    export_hostile.main_into(out_dir)


if __name__ == "__main__":
    main()
