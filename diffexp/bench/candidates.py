"""The compute-floor issue's gap-closing candidates, each timed at the DiT's own shapes on one GPU before any is
built into a patch: the GELU epilogue, and the attention backends.

    python -m diffexp.bench.candidates --out DIR

- GELU: FLUX's MLP up-projections (3072 -> 12288 on 4096 image, 512 text and 4608 joint tokens, tanh GELU after
  it) as Inductor compiles them (GEMM, then a fused bias + GELU pass) against cuBLASLt's GELU epilogue
  (`torch._addmm_activation`, which a custom op would keep opaque to Inductor) and against the bare GEMM, which
  bounds what any fusion can reach. Which GELU the epilogue computes (tanh or exact) is read from its output.
- Attention: SDPA at FLUX.1-dev's 1024^2 shape (B1 H24 S4608 D128) and Wan2.2 TI2V-5B's 720p shape (S27280),
  on each backend that runs here (cuDNN, flash, memory-efficient) and on SDPA's own pick.

Writes DIR/candidates.json and prints a table. Device time per call: CUDA events around back-to-back calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HIDDEN, MLP = 3072, 12288
MLP_TOKENS = {"image (double block ff)": 4096, "text (double block ff_context)": 512, "joint (single block)": 4608}
ATTENTION = {"flux1_dev 1024^2": (1, 24, 4608, 128), "wan22_ti2v 720p": (1, 24, 27280, 128)}
REPLAYS = 15


def _time(fn, calls: int = 20) -> float:
    """Median device ms per call over REPLAYS batches of `calls` back-to-back calls between CUDA events; every
    call here is tens of microseconds or more, so the host keeps ahead and launch gaps stay out."""
    for _ in range(3):  # compilation, autotuning, allocator growth
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(REPLAYS):
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / calls)
    return statistics.median(samples)


def _tflops(flop: float, ms: float) -> float:
    return flop / (ms * 1e-3) / 1e12


def _gelu_row(where: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, compiled) -> dict:
    tokens = x.shape[0]
    ref = F.linear(x.float(), w.float(), b.float())
    epilogue = torch._addmm_activation(b, x, w.t(), use_gelu=True).float()
    err = {kind: ((epilogue - F.gelu(ref, approximate=kind)).norm() / ref.norm()).item() for kind in ("tanh", "none")}
    ms = {
        "gemm_only": _time(lambda: F.linear(x, w, b)),
        "eager": _time(lambda: F.gelu(F.linear(x, w, b), approximate="tanh")),
        "compiled": _time(lambda: compiled(x)),
        "cublaslt_epilogue": _time(lambda: torch._addmm_activation(b, x, w.t(), use_gelu=True)),
    }
    return {
        "where": where,
        "shape": f"{tokens}x{HIDDEN}->{MLP}",
        **{f"{k}_ms": v for k, v in ms.items()},
        "gemm_tflops": _tflops(2 * tokens * HIDDEN * MLP, ms["gemm_only"]),
        "epilogue_gain_ms": ms["compiled"] - ms["cublaslt_epilogue"],
        "epilogue_rel_err_vs_tanh": err["tanh"],
        "epilogue_rel_err_vs_exact": err["none"],
    }


def gelu_rows() -> list[dict]:
    g = torch.Generator(device="cuda").manual_seed(0)
    w = torch.randn(MLP, HIDDEN, device="cuda", dtype=torch.bfloat16, generator=g) * HIDDEN**-0.5
    b = torch.randn(MLP, device="cuda", dtype=torch.bfloat16, generator=g) * 0.1
    compiled = torch.compile(lambda x: F.gelu(F.linear(x, w, b), approximate="tanh"))
    return [
        _gelu_row(where, torch.randn(tokens, HIDDEN, device="cuda", dtype=torch.bfloat16, generator=g), w, b, compiled)
        for where, tokens in MLP_TOKENS.items()
    ]


BACKENDS = ("cudnn", "flash", "efficient")


def _attention_row(where: str, batch: int, heads: int, seq: int, dim: int) -> dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = dict(
        zip(BACKENDS, (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION))
    )
    q, k, v = (torch.randn(batch, heads, seq, dim, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    attend = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
    ref = attend().float()
    row = {"where": where, "shape": f"B{batch} H{heads} S{seq} D{dim}", "default_ms": _time(attend)}
    for name, backend in backends.items():
        try:
            with sdpa_kernel(backend):
                out = attend().float()
                row[f"{name}_ms"] = _time(attend)
            row[f"{name}_rel_err"] = ((out - ref).norm() / ref.norm()).item()
        except RuntimeError as exc:  # a backend that does not take this shape / dtype / GPU
            row[f"{name}_ms"] = None
            row[f"{name}_error"] = str(exc).splitlines()[0][:200]
    times = {n: row[f"{n}_ms"] for n in BACKENDS if row.get(f"{n}_ms")}
    row["fastest"] = min(times, key=times.get) if times else None
    row["default_tflops"] = _tflops(4 * batch * heads * seq * seq * dim, row["default_ms"])
    return row


def attention_rows() -> list[dict]:
    return [_attention_row(where, *shape) for where, shape in ATTENTION.items()]


def _table(rows: list[dict]) -> str:
    keys = [k for k in rows[0] if not k.endswith("_error")]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.bench.candidates", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU: the candidates are GPU kernels (cuBLASLt epilogues, SDPA backends)")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cudnn": torch.backends.cudnn.version()}
    with torch.no_grad():
        for name, measure in (("gelu", gelu_rows), ("attention", attention_rows)):
            result[name] = measure()
            (args.out / "candidates.json").write_text(json.dumps(result, indent=1))
            print(f"\n{name}\n{_table(result[name])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
