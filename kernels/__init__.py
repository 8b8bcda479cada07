"""Triton kernels for DiT hot paths: one module per kernel (Triton kernel, PyTorch reference, op wrapper).

Importing the package registers the custom ops `torch.ops.diffexp.*`: rms_norm, norm_modulate,
gated_residual, gated_residual_norm_modulate, qk_norm_rope, qk_norm_rope_out, the `_joint` forms of
norm_modulate, gated_residual and qk_norm_rope (inputs given as text and image parts, read without a cat), and
linear_gelu_tanh (not Triton: cuBLASLt's GELU epilogue, opaque to Inductor).
The Python entry points live in the modules of the same name (`from kernels.rms_norm import rms_norm`).
`kernels.patch.apply_triton_kernels` swaps them into diffusers' FLUX and Wan transformers;
`python -m diffexp.bench.kernels` times them. On CPU they run only under TRITON_INTERPRET=1 (tests).
"""

# The package's attributes stay the modules; importing them registers the ops.
from kernels import gated_residual, linear_gelu, norm_modulate, qk_norm_rope, rms_norm  # noqa: F401

OPS = (
    "rms_norm",
    "norm_modulate",
    "gated_residual",
    "gated_residual_norm_modulate",
    "norm_modulate_joint",
    "gated_residual_joint",
    "qk_norm_rope",
    "qk_norm_rope_out",
    "qk_norm_rope_joint",
    "linear_gelu_tanh",
)
