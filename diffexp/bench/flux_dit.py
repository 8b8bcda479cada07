"""The FLUX.1-dev-size DiT on a GPU with random weights: eager vs torch.compile, torch vs Triton kernels.

Each variant is a fresh `python -m diffexp` process (so peak memory is its own), untracked, writing
config.yaml + metrics.json into OUT/<variant>; `python -m diffexp.upload OUT/*/` logs them to MLflow
afterwards. A transformer-level check compares the Triton-kernel DiT with the stock one on the same
inputs (one forward pass), which is where "agrees within bf16 tolerance" is meaningful: whole
generations with random weights amplify any rounding difference step after step.

    python -m diffexp.bench.flux_dit --out runs/ --steps 28 --variants eager compile eager_triton compile_triton
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from diffexp import rundir

# Eager variants get one warmup generation too, so no variant pays first-call costs (cuBLAS handles, allocator).
WARM_EAGER = ["compile=off", "compile.warmup=true", "compile.warmup_runs=1"]
VARIANTS = {
    "eager": [*WARM_EAGER, "kernels=torch"],
    "compile": ["compile=on", "kernels=torch"],
    "eager_triton": [*WARM_EAGER, "kernels=triton"],
    "compile_triton": ["compile=on", "kernels=triton"],
    "profile_eager": [*WARM_EAGER, "kernels=torch", "profile=torch", "profile.num_steps=2"],
}
BASE = [
    "model=flux1_dev",
    "engine=diffusers",
    "model.weights=random",
    "tracking.enabled=false",
    "compile.warmup_steps=3",
]


def run_variant(name: str, out: Path, steps: int, extra: list[str]) -> dict:
    run_dir = out / name
    cmd = [
        sys.executable,
        "-m",
        "diffexp",
        *BASE,
        *VARIANTS[name],
        f"model.sampling.num_inference_steps={steps}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    print("$", " ".join(cmd), flush=True)
    started = time.time()
    proc = subprocess.run(cmd, text=True, capture_output=True)
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], flush=True)
        return {"variant": name, "error": proc.stderr[-500:]}
    metrics = json.loads((run_dir / rundir.METRICS_JSON).read_text())
    row = {
        "variant": name,
        "denoise_s": metrics["denoise_s"],
        "step_ms_median": metrics["denoise_step_median_ms"],
        "e2e_s": metrics["e2e_s"],
        "text_encode_s": metrics["text_encode_s"],
        "vae_decode_s": metrics["vae_decode_s"],
        "peak_mem_gib": metrics["peak_mem_gib"],
        "warmup_s": metrics["extra_metrics"].get("warmup_s"),
        "wall_s": time.time() - started,
        "gpu": metrics["tags"].get("gpu.names"),
    }
    print(json.dumps(row), flush=True)
    return row


def flux_transformer(seed: int = 0):
    """The FLUX.1-dev-size DiT alone, seeded random weights, bf16, on the GPU, in eval mode."""
    import torch

    from diffexp.models.arch import build_components, load_arch

    arch = load_arch("flux1_dev")
    arch = {"pipeline": arch["pipeline"], "components": {"transformer": arch["components"]["transformer"]}}
    return build_components(arch, seed=seed, device="cuda", dtype=torch.bfloat16)["transformer"].eval()


def flux_forward_inputs(height: int = 1024, width: int = 1024, text_tokens: int = 512) -> dict:
    """One denoise step's transformer inputs at a resolution: latent tokens, T5 text, pooled CLIP, ids."""
    import torch

    side = width // 16
    tokens = (height // 16) * side
    gen = torch.Generator("cuda").manual_seed(0)
    inputs = dict(
        hidden_states=torch.randn(1, tokens, 64, device="cuda", dtype=torch.bfloat16, generator=gen),
        encoder_hidden_states=torch.randn(1, text_tokens, 4096, device="cuda", dtype=torch.bfloat16, generator=gen),
        pooled_projections=torch.randn(1, 768, device="cuda", dtype=torch.bfloat16, generator=gen),
        timestep=torch.tensor([0.5], device="cuda", dtype=torch.bfloat16),
        guidance=torch.tensor([4.0], device="cuda", dtype=torch.bfloat16),
        img_ids=torch.zeros(tokens, 3, device="cuda"),
        txt_ids=torch.zeros(text_tokens, 3, device="cuda"),
        return_dict=False,
    )
    inputs["img_ids"][:, 1] = torch.arange(tokens, device="cuda") // side
    inputs["img_ids"][:, 2] = torch.arange(tokens, device="cuda") % side
    return inputs


def transformer_agreement(height: int = 1024, width: int = 1024) -> dict:
    """Max/mean abs difference of one FLUX.1-dev-size DiT forward, stock vs Triton kernels, same inputs."""
    import torch

    from kernels.patch import apply_triton_kernels

    transformer = flux_transformer()
    inputs = flux_forward_inputs(height, width)
    with torch.no_grad():
        reference = transformer(**inputs)[0].float()
        patched = apply_triton_kernels(transformer)
        candidate = transformer(**inputs)[0].float()
    return {"patched": patched, **output_difference(reference, candidate)}


def output_difference(reference, candidate) -> dict:
    """How far one forward's output is from another's: max/mean |diff|, mean |diff| / mean |reference|, finite."""
    reference, candidate = reference.float(), candidate.float()
    diff = (candidate - reference).abs()
    scale = reference.abs().mean().item()
    return {
        "max_abs_diff": diff.max().item(),
        "mean_abs_diff": diff.mean().item(),
        "mean_abs_reference": scale,
        "relative_mean_diff": diff.mean().item() / scale if scale else None,
        "finite": bool(candidate.isfinite().all().item()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--variants", nargs="+", default=["eager", "compile"], choices=sorted(VARIANTS))
    parser.add_argument(
        "--agreement", action="store_true", help="also compare the Triton-kernel DiT with the stock one"
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every variant")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"rows": []}
    # Written after every step, so a run cut off by a time limit keeps what it measured.
    save = lambda: (args.out / "summary.json").write_text(json.dumps(summary, indent=2))  # noqa: E731
    if args.agreement:
        summary["agreement"] = _agreement()
        save()
    for name in args.variants:
        summary["rows"].append(run_variant(name, args.out, args.steps, args.overrides))
        save()


def _agreement() -> dict:
    try:
        found = transformer_agreement()
    except Exception as exc:  # report, do not lose the timings
        found = {"error": repr(exc)}
    import torch

    torch.cuda.empty_cache()  # the variants that follow run in their own processes
    print(json.dumps(found), flush=True)
    return found


if __name__ == "__main__":
    main()
