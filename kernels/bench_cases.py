"""One benchmark case per kernel: its inputs at a DiT shape, the bytes it must move, and its contenders.

Contenders: `triton` (the op), `eager` (the module's PyTorch reference), `builtin` (the fastest plain PyTorch
a model would write: fused built-ins in the input dtype) and `compile` (torch.compile of the reference,
made by the bench). `launch(inputs, override)` runs the Triton launcher with a forced (block_m, num_warps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kernels.gated_residual import (
    gated_residual,
    gated_residual_norm_modulate,
    gated_residual_norm_modulate_reference,
    gated_residual_reference,
    launch_gated_residual,
    launch_gated_residual_norm_modulate,
)
from kernels.norm_modulate import launch_norm_modulate, norm_modulate, norm_modulate_reference
from kernels.qk_norm_rope import launch_qk_norm_rope, qk_norm_rope, qk_norm_rope_reference
from kernels.rms_norm import launch_rms_norm, rms_norm, rms_norm_reference

Inputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BenchCase:
    name: str
    make_inputs: Callable[[int, int, int, torch.dtype, torch.device, torch.Generator], Inputs]
    triton: Callable[[Inputs], object]
    reference: Callable[[Inputs], object]
    builtin: Callable[[Inputs], object]
    launch: Callable[[Inputs, tuple[int, int]], object]
    # Tensors written, as multiples of the first input's size (the rest are read once).
    outputs: int
    # Whether the launcher takes a rows-per-program override (else only num_warps is swept).
    sweeps_rows: bool = True


EPS = 1e-6
HEAD_DIM = 128


def _randn(shape, dtype, device, gen) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=device, dtype=torch.float32).to(dtype)


def _rows(b, s, d, dtype, device, gen) -> Inputs:
    return {"x": _randn((b, s, d), dtype, device, gen)}


def _modulation(b, d, dtype, device, gen, names) -> Inputs:
    # Small, like real AdaLN outputs: scale ~ 0.1 keeps 1 + scale near 1.
    return {n: 0.1 * _randn((b, d), dtype, device, gen) for n in names}


def _rms_inputs(b, s, d, dtype, device, gen) -> Inputs:
    return {**_rows(b, s, d, dtype, device, gen), "w": 1 + 0.1 * _randn((d,), dtype, device, gen)}


def _nm_inputs(b, s, d, dtype, device, gen) -> Inputs:
    return {**_rows(b, s, d, dtype, device, gen), **_modulation(b, d, dtype, device, gen, ("scale", "shift"))}


def _gr_inputs(b, s, d, dtype, device, gen) -> Inputs:
    return {
        "x": _randn((b, s, d), dtype, device, gen),
        "y": _randn((b, s, d), dtype, device, gen),
        **_modulation(b, d, dtype, device, gen, ("gate",)),
    }


def _grnm_inputs(b, s, d, dtype, device, gen) -> Inputs:
    return {**_gr_inputs(b, s, d, dtype, device, gen), **_modulation(b, d, dtype, device, gen, ("scale", "shift"))}


def _qk_inputs(b, s, d, dtype, device, gen) -> Inputs:
    heads = d // HEAD_DIM
    angles = _randn((s, HEAD_DIM // 2), torch.float32, device, gen).repeat_interleave(2, dim=-1)
    return {
        "x": _randn((b, s, heads, HEAD_DIM), dtype, device, gen),
        "k": _randn((b, s, heads, HEAD_DIM), dtype, device, gen),
        "wq": 1 + 0.1 * _randn((HEAD_DIM,), dtype, device, gen),
        "wk": 1 + 0.1 * _randn((HEAD_DIM,), dtype, device, gen),
        "cos": angles.cos(),
        "sin": angles.sin(),
    }


def _modulate_builtin(normed, scale, shift):
    return normed * (1 + scale[:, None]) + shift[:, None]


def _rope_builtin(x, cos, sin):
    """diffusers' apply_rotary_emb(use_real=True, use_real_unbind_dim=-1, sequence_dim=1), verbatim."""
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    x_real, x_imag = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    x_rotated = torch.stack([-x_imag, x_real], dim=-1).flatten(3)
    return (x.float() * cos + x_rotated.float() * sin).to(x.dtype)


def _qk_builtin(i):
    q = F.rms_norm(i["x"], (HEAD_DIM,), i["wq"], EPS)
    k = F.rms_norm(i["k"], (HEAD_DIM,), i["wk"], EPS)
    return _rope_builtin(q, i["cos"], i["sin"]), _rope_builtin(k, i["cos"], i["sin"])


def _grnm_builtin(i):
    h = torch.addcmul(i["x"], i["gate"][:, None], i["y"])
    return h, _modulate_builtin(F.layer_norm(h, (h.shape[-1],), eps=EPS), i["scale"], i["shift"])


def _empty(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device=t.device)


CASES: dict[str, BenchCase] = {
    "rms_norm": BenchCase(
        name="rms_norm",
        make_inputs=_rms_inputs,
        triton=lambda i: rms_norm(i["x"], i["w"], EPS),
        reference=lambda i: rms_norm_reference(i["x"], i["w"], EPS),
        builtin=lambda i: F.rms_norm(i["x"], (i["x"].shape[-1],), i["w"], EPS),
        launch=lambda i, o: launch_rms_norm(i["x"], i["w"], EPS, _empty(i["x"]), o),
        outputs=1,
    ),
    "norm_modulate": BenchCase(
        name="norm_modulate",
        make_inputs=_nm_inputs,
        triton=lambda i: norm_modulate(i["x"], i["scale"], i["shift"], EPS),
        reference=lambda i: norm_modulate_reference(i["x"], i["scale"], i["shift"], EPS),
        builtin=lambda i: _modulate_builtin(F.layer_norm(i["x"], (i["x"].shape[-1],), eps=EPS), i["scale"], i["shift"]),
        launch=lambda i, o: launch_norm_modulate(i["x"], i["scale"], i["shift"], EPS, _empty(i["x"]), o),
        outputs=1,
    ),
    "gated_residual": BenchCase(
        name="gated_residual",
        make_inputs=_gr_inputs,
        triton=lambda i: gated_residual(i["x"], i["y"], i["gate"]),
        reference=lambda i: gated_residual_reference(i["x"], i["y"], i["gate"]),
        builtin=lambda i: torch.addcmul(i["x"], i["gate"][:, None], i["y"]),
        launch=lambda i, o: launch_gated_residual(i["x"], i["y"], i["gate"], _empty(i["x"]), o),
        outputs=1,
    ),
    "gated_residual_norm_modulate": BenchCase(
        name="gated_residual_norm_modulate",
        make_inputs=_grnm_inputs,
        triton=lambda i: gated_residual_norm_modulate(i["x"], i["y"], i["gate"], i["scale"], i["shift"], EPS),
        reference=lambda i: gated_residual_norm_modulate_reference(
            i["x"], i["y"], i["gate"], i["scale"], i["shift"], EPS
        ),
        builtin=_grnm_builtin,
        launch=lambda i, o: launch_gated_residual_norm_modulate(
            i["x"], i["y"], i["gate"], i["scale"], i["shift"], EPS, _empty(i["x"]), _empty(i["x"]), o
        ),
        outputs=2,
    ),
    "qk_norm_rope": BenchCase(
        name="qk_norm_rope",
        make_inputs=_qk_inputs,
        triton=lambda i: qk_norm_rope(i["x"], i["k"], i["wq"], i["wk"], i["cos"], i["sin"], EPS),
        reference=lambda i: qk_norm_rope_reference(i["x"], i["k"], i["wq"], i["wk"], i["cos"], i["sin"], EPS),
        builtin=_qk_builtin,
        launch=lambda i, o: launch_qk_norm_rope(
            i["x"], i["k"], i["wq"], i["wk"], i["cos"], i["sin"], EPS, _empty(i["x"]), _empty(i["k"]), o
        ),
        outputs=2,
        sweeps_rows=False,
    ),
}


def bytes_moved(case: BenchCase, inputs: Inputs) -> int:
    """Every input read once plus every output written once: the least traffic any version needs."""
    read = sum(t.numel() * t.element_size() for t in inputs.values())
    written = case.outputs * inputs["x"].numel() * inputs["x"].element_size()
    return read + written


def max_rel_error(got, want) -> float:
    """max over outputs of ||got - want|| / ||want||, in fp64."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    errors = [(g.double() - w.double()).norm().item() / max(w.double().norm().item(), 1e-30) for g, w in zip(got, want)]
    return max(errors)
