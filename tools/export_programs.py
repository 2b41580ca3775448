"""Small programs that exercise each lowering rule, with torch's outputs.

Each program is exported in both forms (default export and after
run_decompositions()) into OUT_DIR/programs/<name>[_core]/ as model.pt2,
input_K.npy (user inputs, in order) and output_K.npy (torch's outputs).
compiler/tests/end_to_end.rs compiles every one and compares.

Usage: python tools/export_programs.py OUT_DIR
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_io  # noqa: E402


class Conv(torch.nn.Module):
    """Batch 2, stride, padding, dilation, no bias: the N > 1 im2col path."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 3, stride=2, padding=2, dilation=2, bias=False)

    def forward(self, x):
        return self.conv(x)


class ConvBias(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 16, (3, 5), stride=(1, 2), padding=(1, 0))

    def forward(self, x):
        return torch.relu(self.conv(x))


class MaxPool(torch.nn.Module):
    def forward(self, x):
        a = F.max_pool2d(x, 3, stride=2, padding=1)
        b = F.max_pool2d(x, 2, ceil_mode=True)
        return a, b


class MaxPoolIndices(torch.nn.Module):
    def forward(self, x):
        values, indices = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
        return values, indices


class Linear3d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(12, 7)
        self.head = torch.nn.Linear(7, 3, bias=False)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x)))


class MatrixOps(torch.nn.Module):
    def forward(self, a, b, c):
        p = torch.addmm(c, a, b, beta=0.5, alpha=2.0)
        q = torch.mm(a, b)
        r = torch.t(q).reshape(2, 10, 4)
        s = r.permute(2, 0, 1)
        return p, s


class Broadcast(torch.nn.Module):
    def forward(self, x, y, mask, n):
        a = x * y
        b = torch.add(x, y, alpha=3)
        c = x * mask
        d = n * n + n
        return a, b, c, d


class BuffersAndConstants(torch.nn.Module):
    """A persistent and a non-persistent buffer, and a lifted tensor constant."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 4))
        self.register_buffer("shift", torch.arange(4.0) / 10, persistent=False)
        self.offset = torch.tensor([1.0, -1.0, 2.0, -2.0])  # not registered: lifted as a constant

    def forward(self, x):
        return x * self.scale + self.shift + self.offset


class Aliases(torch.nn.Module):
    """The same tensor returned twice, and an input returned as is."""

    def forward(self, x):
        y = torch.relu(x)
        return y, y, x


class BufferMutation(torch.nn.Module):
    """A buffer the program updates: its new value persists between runs."""

    def __init__(self):
        super().__init__()
        self.register_buffer("total", torch.zeros(3))
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        self.total.add_(x)
        self.calls += 1
        return x * self.total, self.calls.clone()


class ControlFlow(torch.nn.Module):
    """torch.cond choosing between two branches at run time, and a
    while_loop whose trip count is an input."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x, n):
        from torch._higher_order_ops.while_loop import while_loop

        y = torch.cond(x.sum() > 0, lambda v: self.fc(v).relu(), lambda v: v * 2 - 1, (x,))
        _, z = while_loop(lambda i, h: i < n, lambda i, h: (i + 1, torch.tanh(self.fc(h))), (torch.zeros((), dtype=torch.int64), y))
        return y, z


class WriteThroughView(torch.nn.Module):
    """A write into a slice of a new tensor reaches the tensor (Swin's mask)."""

    def forward(self, x):
        m = x.new_zeros(4, 6)
        m[1:3, 2:] = 1.0
        m[:, 0].fill_(-2.0)
        return x + m


class ConvBatchNorm(torch.nn.Module):
    """Evaluation batch norms after a convolution (with bias) and after a
    depthwise one (without): folded into their weights at compile time."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.depthwise = torch.nn.Conv2d(8, 8, 3, groups=8, bias=False)
        self.bn1, self.bn2 = torch.nn.BatchNorm2d(8), torch.nn.BatchNorm2d(8)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2):
                bn.running_mean.copy_(torch.randn(8, generator=g))
                bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
                bn.weight.copy_(torch.randn(8, generator=g))
                bn.bias.copy_(torch.randn(8, generator=g))
        self.eval()

    def forward(self, x):
        return self.bn2(self.depthwise(torch.relu(self.bn1(self.conv(x)))))


class WrittenOutAttention(torch.nn.Module):
    """softmax(q k^T / sqrt(d) + mask) v by hand: one attention node."""

    def forward(self, q, k, v, mask):
        scores = torch.matmul(q, k.transpose(-2, -1)) / 4.0 + mask
        return torch.matmul(torch.softmax(scores, dim=-1), v)


class WrittenOutGelu(torch.nn.Module):
    """A linear layer and GELU's tanh form by hand (GPT-2's
    NewGELUActivation): one gelu node, the layer's epilogue."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(24, 64)

    def forward(self, x):
        y = self.linear(x)
        return 0.5 * y * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (y + 0.044715 * torch.pow(y, 3.0))))


class HeadsSplitAttention(torch.nn.Module):
    """Attention over heads split off [B, N, H, D] by transposes and merged
    back: the attention node reads and writes that layout in place."""

    def forward(self, q, k, v):
        o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return o.transpose(1, 2).reshape(q.shape[0], q.shape[1], -1)


def programs():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)
    return {
        "conv_batch_norm": (ConvBatchNorm(), (r(1, 3, 10, 10),)),
        "written_out_attention": (WrittenOutAttention(), (r(1, 2, 12, 16), r(1, 2, 20, 16), r(1, 2, 20, 16), r(1, 1, 12, 20))),
        "written_out_gelu": (WrittenOutGelu(), (r(2, 8, 24) * 3.0,)),
        "heads_split_attention": (HeadsSplitAttention(), (r(1, 12, 2, 16), r(1, 20, 2, 16), r(1, 20, 2, 16))),
        "conv_batch2_stride_pad_dilation": (Conv(), (r(2, 3, 11, 9),)),
        "conv_bias_rectangular": (ConvBias(), (r(1, 4, 10, 12),)),
        "max_pool_padding_ceil": (MaxPool(), (r(2, 3, 9, 7),)),
        "max_pool_indices": (MaxPoolIndices(), (r(1, 2, 8, 8),)),
        "linear_3d_input": (Linear3d(), (r(2, 5, 12),)),
        "matrix_ops": (MatrixOps(), (r(4, 6), r(6, 20), r(20))),
        "broadcast_promotion": (
            Broadcast(),
            (r(2, 3, 4), r(3, 1), torch.rand(4, generator=g) > 0.5, torch.randint(-5, 5, (2, 3), generator=g)),
        ),
        "aliased_outputs": (Aliases(), (r(2, 3),)),
        "buffers_and_constants": (BuffersAndConstants(), (r(3, 4),)),
        "control_flow": (ControlFlow(), (r(3, 4), torch.tensor(3))),
        "write_through_view": (WriteThroughView(), (r(4, 6),)),
        # 256 output columns: 16 packed panels [16, 24, 16]
        "linear_wide_rows": (torch.nn.Sequential(torch.nn.Linear(24, 256), torch.nn.ReLU()), (r(5, 24),)),
        # 3x3 stride 1, 32 channels, 6x6 tiles: Winograd, its filter
        # transform made by the runtime from the stored weight
        "conv3x3_winograd": (torch.nn.Conv2d(32, 32, 3, padding=1), (r(1, 32, 12, 12),)),
        # in f64 (no panels) the stored W^T has 1 KiB rows, padded by a line
        "linear_wide_rows_f64": (torch.nn.Linear(24, 128).double(), (r(5, 24).double(),)),
        # a Winograd F(2x2, 3x3) convolution at 7x7 (16 tiles): the library
        # stores the 4.7 MB weight, the runtime makes its transform
        "conv_large_weight_ragged": (torch.nn.Conv2d(256, 512, 3, padding=1), (r(1, 256, 7, 7),)),
        # 49 output columns and a 4.7 MB weight, strided (resnet18's last
        # downsampling): computed transposed, the weight stored as packed
        # panels of its transpose [32, 2304, 16]
        "conv_large_weight_strided": (torch.nn.Conv2d(256, 512, 3, stride=2, padding=1), (r(1, 256, 14, 14),)),
        # strided depthwise on 16-channel blocks: the weight stored as [1, 5, 5, 32]
        "depthwise_blocked": (torch.nn.Conv2d(32, 32, 5, stride=2, padding=2, groups=32), (r(1, 32, 14, 14),)),
    }


def export_buffer_mutation(out_dir):
    """Exported from a fresh module; the reference is the second call's
    outputs (compiled code is run twice on one handle: `runs` file)."""
    x = torch.randn(3)
    ep = torch.export.export(BufferMutation(), (x,))
    module = BufferMutation()
    with torch.no_grad():
        module(x)
        outputs = module(x)
    for form, program in [("", ep), ("_core", ep.run_decompositions())]:
        directory = os.path.join(out_dir, "programs", "buffer_mutation_two_runs" + form)
        fixture_io.save(directory, program, (x,), outputs)
        with open(os.path.join(directory, "runs"), "w") as f:
            f.write("2\n")


def export(out_dir):
    torch.manual_seed(0)
    for name, (module, inputs) in programs().items():
        module = module.eval()
        with torch.no_grad():
            outputs = module(*inputs)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        ep = torch.export.export(module, inputs)
        fixture_io.save(os.path.join(out_dir, "programs", name), ep, inputs, outputs)
        fixture_io.save(os.path.join(out_dir, "programs", name + "_core"), ep.run_decompositions(), inputs, outputs)
    export_buffer_mutation(out_dir)


if __name__ == "__main__":
    export(sys.argv[1])
