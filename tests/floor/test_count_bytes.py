"""The byte estimate of the memory-bound rest, and which ops count as what, on modules small enough to count
by hand (float32: 4 bytes an element)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffexp.floor.count import count_forward, tensor_bytes
from diffexp.floor.shapes import ATTENTION, GEMM, AttentionShape, GemmShape

F32 = 4


class Chain(nn.Module):
    """linear → gelu·2 → linear → + residual: two GEMMs with memory-bound ops between and after them."""

    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(4, 16), nn.Linear(16, 4)

    def forward(self, x):
        y = self.up(x)
        z = F.gelu(y) * 2.0
        return self.down(z) + x


def test_chain_counts_gemms_and_both_byte_estimates():
    x = torch.randn(8, 4)
    counts = count_forward(Chain(), (x,))
    assert counts.shapes == {
        GemmShape(8, 16, 4, True, "float32"): 1,
        GemmShape(8, 4, 16, True, "float32"): 1,
    }
    y = z = 8 * 16 * F32
    out = x_bytes = result = 8 * 4 * F32
    # Fused: gelu·2 reads y once and writes only z (the next GEMM's input); the residual add reads the
    # GEMM's result and x, and writes the forward's output.
    assert counts.memory_bytes == y + z + out + x_bytes + result
    # Eager: gelu reads y, writes g; mul reads g, writes z; add reads out and x, writes the result.
    assert counts.memory_bytes_eager == (y + y) + (y + z) + (out + x_bytes + result)
    assert counts.memory_ops == 3


class Reused(nn.Module):
    """A tensor made before a GEMM and used again after it must be written out and read back."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        h = x * 2.0
        return self.proj(h) + h


def test_a_tensor_needed_across_a_gemm_is_written_once_and_read_again():
    counts = count_forward(Reused(), (torch.randn(8, 4),))
    t = 8 * 4 * F32
    # read x, write h (for the GEMM and for later); read the GEMM's result and h again, write the output.
    assert counts.memory_bytes == t + t + t + t + t


def test_views_move_nothing_and_a_copy_moves_its_bytes():
    class Transposed(nn.Module):
        def forward(self, x):
            return x.t().reshape(32).view(8, 4)  # t and view alias; reshape of the transpose copies

    counts = count_forward(Transposed(), (torch.randn(4, 8),))
    t = 4 * 8 * F32
    assert counts.memory_ops == 1
    assert counts.memory_bytes == counts.memory_bytes_eager == t + t


def test_a_broadcast_tensor_counts_its_distinct_elements():
    assert tensor_bytes(torch.empty(3, 1).expand(3, 1000)) == 3 * F32
    assert tensor_bytes(torch.empty(3, 1000)[:, ::2]) == 3 * 500 * F32


class Attention(nn.Module):
    def forward(self, q, k, v):
        # diffusers' native backend: (B, S, H, D) tensors handed over as (B, H, S, D) views.
        return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))


def test_attention_is_one_shape_whatever_runs_inside_it():
    """On the meta device SDPA runs as bmm + softmax: neither becomes a GEMM or memory-bound bytes."""
    q = torch.empty(2, 64, 3, 16, device="meta")
    kv = torch.empty(2, 80, 3, 16, device="meta")
    counts = count_forward(Attention(), (q, kv, kv))
    shape = AttentionShape(2, 3, 64, 80, 16, 16, "float32", layout="bshd")
    assert counts.shapes == {shape: 1} and counts.of(GEMM) == {}
    assert counts.flops(ATTENTION) == 4 * 2 * 3 * 64 * 80 * 16
    assert counts.memory_ops == 0 and counts.memory_bytes == 0


def test_forwards_add_up():
    x = torch.randn(8, 4)
    one = count_forward(Chain(), (x,))
    two = one + one
    assert two.forwards == 2 and two.memory_bytes == 2 * one.memory_bytes
    assert two.shapes == {shape: 2 for shape in one.shapes}
