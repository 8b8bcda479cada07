"""Triton kernels for DiT hot paths: one module per kernel (kernel, PyTorch reference, op wrapper).

Importing this package registers the custom ops under `torch.ops.diffexp.*`:
rms_norm, norm_modulate, gated_residual, gated_residual_norm_modulate, qk_norm_rope, qk_norm_rope_out.
`kernels.patch.apply_triton_kernels` swaps them into diffusers' FLUX and Wan transformers;
`python -m kernels.bench` times them. On CPU they run only under TRITON_INTERPRET=1 (tests).
"""

from kernels.gated_residual import gated_residual, gated_residual_norm_modulate
from kernels.norm_modulate import norm_modulate
from kernels.qk_norm_rope import qk_norm_rope, qk_norm_rope_out
from kernels.rms_norm import rms_norm

__all__ = [
    "gated_residual",
    "gated_residual_norm_modulate",
    "norm_modulate",
    "qk_norm_rope",
    "qk_norm_rope_out",
    "rms_norm",
]
