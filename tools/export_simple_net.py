"""Export SimpleNet (the torch.export tutorial model) and its reference data.

Writes, into the output folder (default: examples/):
  simple_net.pt2             default export (aten.conv2d, aten.linear, ...)
  simple_net_core.pt2        the same program after run_decompositions()
  simple_net_input.npy       the reference input (1, 3, 32, 32) float32
  simple_net_output_K.npy    torch's outputs for that input, in output order

Usage: python tools/export_simple_net.py [OUT_DIR]
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SimpleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5)
        self.fc1 = nn.Linear(6 * 14 * 14, 10)
        self.fc2 = nn.Linear(6 * 14 * 14, 10)
        self.register_buffer("mask", torch.randn(6, 14, 14) > 0.5)

    def forward(self, x: torch.Tensor):
        x = self.conv(x)
        x = F.relu(x)
        x = F.max_pool2d(x, (2, 2))
        x = x * self.mask
        x = torch.flatten(x, 1)
        y = self.fc1(x)
        z = self.fc2(x)
        y = F.relu(y)
        z = F.relu(z)
        return z, y


def export(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = SimpleNet().eval()
    x = torch.randn(1, 3, 32, 32)
    ep = torch.export.export(model, (x,))
    torch.export.save(ep, os.path.join(out_dir, "simple_net.pt2"))
    torch.export.save(ep.run_decompositions(), os.path.join(out_dir, "simple_net_core.pt2"))
    with torch.no_grad():
        outputs = model(x)
    np.save(os.path.join(out_dir, "simple_net_input.npy"), x.numpy())
    for k, out in enumerate(outputs):
        np.save(os.path.join(out_dir, f"simple_net_output_{k}.npy"), out.numpy())


if __name__ == "__main__":
    export(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "examples"))
