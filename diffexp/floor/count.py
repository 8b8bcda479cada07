"""Count one forward's work from the ops it dispatches: GEMM / convolution / attention shapes, and the bytes
the memory-bound rest (norms, elementwise, activations, copies) has to move.

The forward runs for real under a TorchDispatchMode (on CPU, CUDA or the meta device, where it costs no
compute), so the counts are those of the module's own code, not of a model of it. Attention is caught one
level higher, at `F.scaled_dot_product_attention` (a TorchFunctionMode), since below it each backend is a
different op (the meta and math paths are bmm + softmax); the ops inside it are not counted again.

Bytes are an estimate from tensor sizes, two ways (docs/floor.md):
- eager: every memory-bound op reads each tensor argument and writes each result once, what unfused eager
  kernels move;
- fused (the one the floor uses): the memory-bound ops between two consecutive GEMM / attention calls
  run as one kernel that reads each tensor it needs from outside (weights, inputs, GEMM results, results
  of an earlier group) once and writes only what a GEMM, attention, a later group or the output needs.
A tensor's size counts its distinct elements (a broadcast, stride-0 dimension counts once).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

from diffexp.floor.shapes import AttentionShape, ConvShape, GemmShape, Shape

aten = torch.ops.aten
# Ops whose schema does not mark them as views but that alias their input all the same.
ALIASING = {aten._unsafe_view.default, aten.lift_fresh.default}
# Ops that neither compute nor move data.
NO_DATA = {aten.empty.memory_format, aten.empty_strided.default, aten.empty_like.default, aten.detach.default}


@dataclass
class ForwardCounts:
    """What one or more forwards ran: shape → calls, and the bytes of the memory-bound rest."""

    shapes: Counter = field(default_factory=Counter)
    memory_bytes: int = 0
    memory_bytes_eager: int = 0
    memory_ops: int = 0
    forwards: int = 0
    # Attention-like ops met below the SDPA level, whose FLOPs are not counted (named in the report).
    uncounted_ops: Counter = field(default_factory=Counter)

    def __add__(self, other: ForwardCounts) -> ForwardCounts:
        return ForwardCounts(
            self.shapes + other.shapes,
            self.memory_bytes + other.memory_bytes,
            self.memory_bytes_eager + other.memory_bytes_eager,
            self.memory_ops + other.memory_ops,
            self.forwards + other.forwards,
            self.uncounted_ops + other.uncounted_ops,
        )

    def flops(self, category: str) -> int:
        return sum(shape.flops * n for shape, n in self.shapes.items() if shape.category == category)

    def of(self, category: str) -> dict[Shape, int]:
        return {shape: n for shape, n in self.shapes.items() if shape.category == category}


def tensor_bytes(t: torch.Tensor) -> int:
    """Distinct bytes of a tensor: a broadcast (stride 0) dimension holds one element."""
    return prod(s for s, st in zip(t.shape, t.stride()) if st != 0) * t.element_size()


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def gemm_shape(func, args) -> GemmShape | None:
    if func is aten.mm.default:
        a, b, bias = args[0], args[1], False
    elif func is aten.addmm.default:
        a, b, bias = args[1], args[2], True
    elif func is aten.bmm.default:
        a, b, bias = args[0], args[1], False
    elif func is aten.baddbmm.default:
        a, b, bias = args[1], args[2], True
    else:
        return None
    batch = a.shape[0] if a.dim() == 3 else 1
    m, k = a.shape[-2:]
    n = b.shape[-1]
    # A weight used as W.t() is column-major: its stride along K is 1.
    return GemmShape(m, n, k, bias, _dtype(a), batch, b_transposed=b.stride(-2) == 1 and n > 1)


def conv_shape(args, out: torch.Tensor) -> ConvShape:
    x, w, b, stride, padding, dilation, transposed, output_padding, groups = args
    return ConvShape(
        tuple(x.shape),
        tuple(w.shape),
        tuple(stride),
        tuple(padding),
        tuple(dilation),
        bool(transposed),
        tuple(output_padding),
        int(groups),
        b is not None,
        tuple(out.shape),
        _dtype(x),
    )


def attention_shape(q, k, v, attn_mask=None, is_causal=False) -> AttentionShape:
    *batch, heads, q_len, head_dim = q.shape
    # diffusers hands over (B, S, H, D) tensors transposed to (B, H, S, D): the head stride is the smallest.
    layout = "bshd" if q.dim() == 4 and q.stride(1) < q.stride(2) else "bhsd"
    return AttentionShape(
        batch=prod(batch),
        heads=heads,
        q_len=q_len,
        kv_len=k.shape[-2],
        head_dim=head_dim,
        v_head_dim=v.shape[-1],
        dtype=_dtype(q),
        causal=bool(is_causal),
        mask=tuple(attn_mask.shape) if isinstance(attn_mask, torch.Tensor) else (),
        layout=layout,
    )


def _is_view(func) -> bool:
    if func in ALIASING:
        return True
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


@dataclass(eq=False)
class _Produced:
    """Where a tensor's data comes from, shared by all views of it."""

    nbytes: int
    # The group of memory-bound ops that produced it; None: materialized (inputs, weights, GEMM results).
    group: int | None
    written: bool = False


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = ForwardCounts()
        self.paused = False
        # Groups of memory-bound ops: a new one starts after every GEMM / attention call.
        self.group = 0
        self.produced: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        # What the current group has read already.
        self.read: set = set()

    def record(self, shape: Shape) -> None:
        self.counts.shapes[shape] += 1

    def _origin(self, t: torch.Tensor) -> _Produced:
        found = self.produced.get(t)
        if found is None:
            found = self.produced[t] = _Produced(tensor_bytes(t), None)
        return found

    def materialize(self, t: torch.Tensor) -> None:
        """`t` is needed outside the group that made it: the fused kernel writes it once."""
        origin = self._origin(t)
        if origin.group is not None and not origin.written:
            origin.written = True
            self.counts.memory_bytes += origin.nbytes

    def _read_in_group(self, t: torch.Tensor) -> None:
        origin = self._origin(t)
        if origin.group == self.group:
            return  # made in this group: stays in registers
        self.materialize(t)
        # The origin itself in the key (not its id, which a later tensor could reuse); reset every group.
        key = (origin, t.storage_offset(), tuple(t.shape), t.stride())
        if key not in self.read:
            self.read.add(key)
            self.counts.memory_bytes += tensor_bytes(t)

    def compute_done(self, inputs: list, outputs: list) -> None:
        for t in inputs:
            self.materialize(t)
        for t in outputs:
            self.produced[t] = _Produced(tensor_bytes(t), None)
        self.group += 1
        self.read.clear()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.paused:
            return out
        inputs = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        outputs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if _is_view(func):
            for o in outputs:
                if inputs:
                    self.produced[o] = self._origin(inputs[0])
            return out
        if func in NO_DATA or not outputs:
            return out
        shape = gemm_shape(func, args)
        if shape is None and func is aten.convolution.default:
            shape = conv_shape(args, outputs[0])
        if shape is not None:
            self.record(shape)
            self.compute_done(inputs, outputs)
            return out
        name = func.name()
        if "attention" in name or "flash_attn" in name:
            self.counts.uncounted_ops[name] += 1
        self.counts.memory_ops += 1
        self.counts.memory_bytes_eager += sum(map(tensor_bytes, inputs)) + sum(map(tensor_bytes, outputs))
        for t in inputs:
            self._read_in_group(t)
        for o in outputs:
            self.produced[o] = _Produced(tensor_bytes(o), self.group)
        return out


class _Attention(TorchFunctionMode):
    """Records each F.scaled_dot_product_attention call and hides its inner ops from the recorder."""

    def __init__(self, recorder: _Recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention or self.recorder.paused:
            return func(*args, **kwargs)
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")
        bound = {**dict(zip(names, args)), **kwargs}
        q, k, v = bound["query"], bound["key"], bound["value"]
        self.recorder.record(attention_shape(q, k, v, bound.get("attn_mask"), bound.get("is_causal", False)))
        self.recorder.paused = True
        try:
            out = func(*args, **kwargs)
        finally:
            self.recorder.paused = False
        self.recorder.compute_done([t for t in (q, k, v, bound.get("attn_mask")) if torch.is_tensor(t)], [out])
        return out


def count_forward(module: torch.nn.Module, args: tuple = (), kwargs: dict[str, Any] | None = None) -> ForwardCounts:
    """Run `module` once on `args` / `kwargs` (no grad) and count what it ran.

    A compiled module is counted through its original eager forward (the work is the same), and module
    hooks are not called (`forward`, not `__call__`), so a step clock on the module does not see the call.
    """
    forward = getattr(module, "_orig_mod", module).forward
    recorder = _Recorder()
    with torch.no_grad(), _Attention(recorder), recorder:
        out = forward(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                recorder.materialize(t)
    recorder.counts.forwards = 1
    return recorder.counts
