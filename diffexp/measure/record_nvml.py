"""Record real NVML samples on a GPU, for the throttle logic's tests and for reading a machine's behaviour:

    python -m diffexp.measure.record_nvml --out DIR [--load-s 30] [--idle-s 3]

Idle, then back-to-back bf16 matmuls (enough to reach the power limit on an H100/H200), then idle again,
sampled at 20 Hz throughout. Writes DIR/nvml_samples.csv, DIR/nvml_samples.json, DIR/nvml_summary.json
(the metrics and tags a run would log for the loaded phase and for the whole recording) and DIR/phases.json.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
import time
from pathlib import Path

from diffexp.measure.gpu import GpuSampler, summarize_samples, write_samples


def _operands(size: int):
    """The matmul's operands, made before NVML is opened: CUDA's start then happens with no sampler thread
    about (the 2026-12-01 recording hung with both starting at once; where is not known)."""
    import torch

    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    return a, b


def _load(seconds: float, a, b) -> int:
    import torch

    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
        done += 20
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.measure.record_nvml", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--load-s", type=float, default=30.0)
    parser.add_argument("--idle-s", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument(
        "--deadline-s", type=float, default=None, help="past this, print every thread's stack and exit (default: "
        "the recording's length + 120 s): a recording that hangs says where"
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = args.deadline_s or args.load_s + 2 * args.idle_s + 120
    faulthandler.dump_traceback_later(deadline, exit=True)
    phases = {}
    say = lambda what: print(f"record_nvml: {what}", file=sys.stderr, flush=True)  # noqa: E731
    say(f"starting CUDA: two bf16 {args.size}^2 operands")
    a, b = _operands(args.size)
    say("opening NVML")
    with GpuSampler() as sampler:
        if not sampler.active:
            print("no NVML (pynvml missing or no NVIDIA driver): nothing to record", file=sys.stderr)
            return 2
        say(f"sampling GPUs {sampler.indices}; idle {args.idle_s:g} s")
        t0 = time.perf_counter()
        time.sleep(args.idle_s)
        phases["load_start_s"] = time.perf_counter() - t0
        say(f"{len(sampler.samples)} samples so far; bf16 matmuls {args.size}^2 for {args.load_s:g} s")
        phases["matmuls"] = _load(args.load_s, a, b)
        phases["load_end_s"] = time.perf_counter() - t0
        say(f"{phases['matmuls']} matmuls; idle {args.idle_s:g} s")
        time.sleep(args.idle_s)
    faulthandler.cancel_dump_traceback_later()
    samples = sampler.samples
    loaded = [s for s in samples if phases["load_start_s"] <= s.t_s <= phases["load_end_s"]]
    write_samples(samples, args.out / "nvml_samples.csv")
    write_samples(samples, args.out / "nvml_samples.json")
    (args.out / "phases.json").write_text(json.dumps({**phases, "size": args.size}, indent=2))
    summary = {}
    for name, part in (("loaded", loaded), ("whole", samples)):
        metrics, tags = summarize_samples(part, sampler.other_procs_mib)
        summary[name] = {"metrics": metrics, "tags": tags}
    (args.out / "nvml_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary["loaded"], indent=2))
    print(f"{len(samples)} samples written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
