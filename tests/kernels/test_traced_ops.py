"""On a GPU the ops are triton_ops: torch.compile traces through them to the Triton launch, so Inductor
launches our kernels from its own wrapper (no per-call dispatcher or Python) and must not copy their inputs."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

# One call of every op on fake CUDA tensors, functionalised as AOTAutograd does before Inductor.
TRACE = textwrap.dedent(
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch._subclasses.functional_tensor import dispatch_functionalize
    from torch.fx.experimental.proxy_tensor import make_fx
    import kernels

    def block(x, y, gate, scale, shift, q, k, w, cos, sin):
        ops = torch.ops.diffexp
        h = ops.norm_modulate(x, scale, shift, 1e-6)
        r, h2 = ops.gated_residual_norm_modulate(x, h, gate, scale, shift, 1e-6)
        r = ops.gated_residual(r, h2, gate)
        j = ops.norm_modulate_joint(x, h, scale, shift, 1e-6)
        rj = ops.gated_residual_joint(x, h, j, gate)
        q2, k2 = ops.qk_norm_rope(q, k, w, w, cos, sin, 1e-6)
        ops.qk_norm_rope_out(q, k, w, w, cos, sin, 1e-6, q, k)
        qj, kj = ops.qk_norm_rope_joint(q2, k2, w, w, 1e-5, q, k, w, w, 1e-6, torch.cat([cos, cos]), torch.cat([sin, sin]))
        return ops.rms_norm(r, None, 1e-6), q2, k2, q, k, qj, kj, rj

    def args(device):
        b, s, h, dh = 2, 8, 2, 32
        t = lambda *shape: torch.randn(*shape, device=device, dtype=torch.bfloat16)
        angles = torch.randn(s, dh // 2, device=device).repeat_interleave(2, -1)
        return (t(b, s, h * dh), t(b, s, h * dh), t(b, h * dh), t(b, h * dh), t(b, h * dh),
                t(b, s, h, dh), t(b, s, h, dh), t(dh), angles.cos(), angles.sin())

    def trace(device):
        if device == "cuda" and not torch.cuda.is_available():
            with FakeTensorMode():
                inputs = args(device)
            return make_fx(dispatch_functionalize(block), tracing_mode="fake")(*inputs)
        return make_fx(dispatch_functionalize(block))(*args(device))
    """
)


def test_ops_trace_to_triton_launches_without_a_gpu():
    """The triton_op path (taken whenever the interpreter is off) registers and traces on fake CUDA tensors."""
    script = TRACE + textwrap.dedent(
        """
        gm = trace("cuda")
        targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
        launches = [n for n in gm.graph.nodes if "triton_kernel_wrapper_functional" in str(n.target)]
        assert not any(t.startswith("diffexp.") for t in targets), targets
        print("launches", len(launches))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one launch for each Triton op of the block (linear_gelu_tanh is cuBLASLt's, not Triton)
    assert "launches 9" in proc.stdout


@pytest.mark.gpu
def test_inductor_sees_which_arguments_each_kernel_writes():
    """Triton's TTIR tells Inductor what each launch mutates; an input it thinks is written would be cloned
    (an extra read and write of the tensor) before every launch."""
    namespace: dict = {}
    exec(TRACE, namespace)
    gm = namespace["trace"]("cuda")
    written = [
        sorted(node.kwargs["tensors_to_clone"])
        for node in gm.graph.nodes
        if "triton_kernel_wrapper_functional" in str(node.target)
    ]
    assert len(written) == 9
    for names in written:
        assert all(name.endswith("out_ptr") for name in names), written
    out = torch.compile(namespace["block"], fullgraph=True)(*namespace["args"]("cuda"))
    assert all(torch.isfinite(t.float()).all() for t in out)
