"""Build one arch's components with random weights on the GPU and print what it cost, as one JSON line.

    python -m diffexp.models.build_check flux2_dev [--dtype bfloat16]

Checks that a full-size build needs no host memory for weights: build_host_rss_gib stays far below the
weights' size, which lie on the GPU (gpu_allocated_gib).
"""

from __future__ import annotations

import argparse
import json

import torch

from diffexp.models.arch import build_components_with_stats, load_arch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arch")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    args = parser.parse_args(argv)
    components, stats = build_components_with_stats(
        load_arch(args.arch), seed=0, device="cuda", dtype=DTYPES[args.dtype]
    )
    finite = {
        name: bool(all(torch.isfinite(p).all() for p in module.parameters()))
        for name, module in components.items()
        if isinstance(module, torch.nn.Module)
    }
    row = {
        "arch": args.arch,
        **stats.metrics(),
        "parameters_b": {k: round(v / 1e9, 3) for k, v in stats.parameters.items()},
        "gpu_allocated_gib": torch.cuda.memory_allocated() / 2**30,
        "all_finite": finite,
    }
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
