"""Exports the larger benchmark programs (random weights) for compare.py.

Usage: python benches/export_bench_models.py OUT_DIR
  OUT_DIR/mlp.pt2         two Linear(1024, 1024) with relu, batch 64
  OUT_DIR/conv_block.pt2  two Conv2d(64, 64, 3, padding=1) with relu, 1x64x56x56
Then: python benches/compare.py examples/simple_net.pt2 OUT_DIR/mlp.pt2 OUT_DIR/conv_block.pt2
"""
import os
import sys

import torch


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(1024, 1024)
        self.b = torch.nn.Linear(1024, 1024)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class ConvBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(64, 64, 3, padding=1)
        self.b = torch.nn.Conv2d(64, 64, 3, padding=1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.export.save(torch.export.export(MLP().eval(), (torch.randn(64, 1024),)), os.path.join(out, "mlp.pt2"))
    torch.export.save(torch.export.export(ConvBlock().eval(), (torch.randn(1, 64, 56, 56),)), os.path.join(out, "conv_block.pt2"))


if __name__ == "__main__":
    main()
