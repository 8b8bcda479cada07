"""Paired A/B of one FLUX.1-dev-size DiT forward: stock modules vs `kernels=triton` (or any two of the variants
stock, triton, triton_gelu, triton_gelu_split: `--base triton --candidate triton_gelu` times the GELU epilogue,
`--base triton_gelu --candidate triton_gelu_split` the single blocks' proj_out without its cat), eager and compiled.

Whole-pipeline runs (diffexp.bench.flux_dit) give the MLflow pair, but a difference of 1 % drowns in
their run-to-run noise: a power-capped H100 moves its clocks by several percent between runs. Here both
variants live in one process (two copies of the same seeded weights) and their forwards alternate
(A B, B A, ...), each timed with CUDA events, so drift hits both alike and the per-round differences give
the gain with a confidence interval. Host time per forward (until the call returns, before the GPU is
done) shows whether the host ever falls behind. nvidia-smi samples SM clock and power meanwhile.

    python -m diffexp.bench.transformer_ab --out runs/ab --rounds 300 --profile

Writes OUT/transformer_ab.json (and with --profile, one torch.profiler trace of a compiled forward of each
variant, for `python -m diffexp.profile OUT/compiled_stock.trace.json.gz OUT/compiled_triton.trace.json.gz`;
the agreement of each variant's output with the stock DiT's, eager and compiled),
then logs OUT as one MLflow run (experiment transformer_ab) where mlflow is importable. Measured where it
is not (a GPU box without it): `python -m diffexp.bench.transformer_ab --log OUT` logs it later.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

from diffexp.bench.flux_dit import flux_forward_inputs, flux_transformer, output_difference
from diffexp.measure.pairing import alternating


def paired_summary(
    base_ms: list[float], candidate_ms: list[float], names: tuple[str, str] = ("stock", "triton")
) -> dict:
    """Gain of the candidate over the base from paired rounds: mean difference and its 95 % confidence interval.
    Per-variant figures are keyed by the variants' names (stock_ms_median, triton_ms_median, ...)."""
    base, candidate = names
    diffs = [a - b for a, b in zip(base_ms, candidate_ms)]
    half_width = 1.96 * statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    mean_base = statistics.fmean(base_ms)
    return {
        "rounds": len(diffs),
        f"{base}_ms_median": statistics.median(base_ms),
        f"{candidate}_ms_median": statistics.median(candidate_ms),
        f"{base}_ms_mean": mean_base,
        f"{candidate}_ms_mean": statistics.fmean(candidate_ms),
        f"{base}_ms_sd": statistics.stdev(base_ms) if len(diffs) > 1 else 0.0,
        f"{candidate}_ms_sd": statistics.stdev(candidate_ms) if len(diffs) > 1 else 0.0,
        "gain_ms_mean": statistics.fmean(diffs),
        "gain_ms_ci95": half_width,
        "gain_ms_median": statistics.median(diffs),
        "gain_pct": 100 * statistics.fmean(diffs) / mean_base,
        f"{candidate}_faster_in_pct_of_rounds": 100 * sum(d > 0 for d in diffs) / len(diffs),
    }


def timed_ms(fn: Callable[[], object]) -> tuple[float, float]:
    """(device ms, host ms until `fn` returned) for one call that starts on an idle GPU."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    begin = time.perf_counter()
    start.record()
    fn()
    host_ms = (time.perf_counter() - begin) * 1e3
    end.record()
    end.synchronize()
    return start.elapsed_time(end), host_ms


def interleaved(variants: dict[str, Callable], rounds: int, warmup: int = 3) -> dict:
    """`rounds` paired rounds of the two variants (base first, candidate second), alternating which runs first."""
    (base, base_fn), (candidate, candidate_fn) = variants.items()
    for _ in range(warmup):
        base_fn()
        candidate_fn()
    times: dict[str, list[float]] = {base: [], candidate: [], f"{base}_host": [], f"{candidate}_host": []}
    for i in range(rounds):
        for name, fn in alternating(list(variants.items()), i):
            device_ms, host_ms = timed_ms(fn)
            times[name].append(device_ms)
            times[f"{name}_host"].append(host_ms)
    summary = paired_summary(times[base], times[candidate], (base, candidate))
    for name in (base, candidate):
        summary[f"{name}_host_ms_median"] = statistics.median(times[f"{name}_host"])
    summary[f"{base}_ms"], summary[f"{candidate}_ms"] = times[base], times[candidate]
    return summary


def measured_phase(out: Path, phase: str, variants: dict[str, Callable], rounds: int) -> dict:
    """`rounds` paired rounds while nvidia-smi samples into OUT/smi_<phase>.csv; the summary, clocks included."""
    samples = out / f"smi_{phase}.csv"
    with gpu_sampler(samples):
        summary = interleaved(variants, rounds)
    summary["gpu"] = sampler_summary(samples)
    print(phase, json.dumps({k: v for k, v in summary.items() if not k.endswith("_ms")}), flush=True)
    return summary


@contextmanager
def gpu_sampler(path: Path, interval_ms: int = 100):
    """nvidia-smi's SM clock, power and clock-event reasons every interval_ms while the block runs."""
    query = "timestamp,clocks.sm,power.draw,clocks_event_reasons.active"
    try:
        proc = subprocess.Popen(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", f"-lms={interval_ms}"],
            stdout=path.open("w"),
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        proc = None
    try:
        yield
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


def sampler_summary(path: Path) -> dict:
    clocks, power, reasons = [], [], set()
    for line in path.read_text().splitlines() if path.is_file() else []:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            try:
                clocks.append(float(parts[1]))
                power.append(float(parts[2]))
            except ValueError:
                continue
            reasons.add(parts[3])
    if not clocks:
        return {}
    return {
        "sm_mhz_mean": statistics.fmean(clocks),
        "sm_mhz_min": min(clocks),
        "sm_mhz_max": max(clocks),
        "power_w_mean": statistics.fmean(power),
        "power_w_max": max(power),
        "clock_event_reasons": sorted(reasons),
        "samples": len(clocks),
    }


RESULT_FILE = "transformer_ab.json"


def ab_metrics(result: dict) -> dict[str, float]:
    """MLflow metrics from a result: every scalar of each phase's summary, and its clock/power summary."""
    metrics = {k: float(v) for k, v in result.items() if k.startswith("compile_s_")}
    for phase, found in result.get("agreement", {}).items():
        metrics.update({f"agreement.{phase}.{k}": float(v) for k, v in found.items() if isinstance(v, (int, float))})
    for phase in ("eager", "compiled"):
        for key, value in result.get(phase, {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{phase}.{key}"] = float(value)
            elif key == "gpu":
                metrics.update({f"{phase}.gpu.{k}": float(v) for k, v in value.items() if isinstance(v, (int, float))})
    return metrics


def log_to_mlflow(out_dir: Path, tracking_uri: str | None, experiment: str = "transformer_ab") -> str | None:
    """One MLflow run from OUT: setup as params, the summaries as metrics, every file in OUT as an artifact."""
    try:
        from diffexp.tracking.writer import RunRecorder
    except ImportError:  # a GPU box without mlflow
        print(f"mlflow is not importable here: results stay in {out_dir} (log them with --log {out_dir})")
        return None

    result = json.loads((out_dir / RESULT_FILE).read_text())
    base, candidate = result.get("base", "stock"), result.get("candidate", "triton")
    name = (
        f"flux1_dev {result.get('height')}x{result.get('width')} {base} vs {candidate} ({result.get('compile_mode')})"
    )
    params = {k: str(result.get(k)) for k in ("gpu", "torch", "height", "width", "compile_mode")}
    params.update(base=base, candidate=candidate)
    params.update({f"{p}.rounds": str(result[p]["rounds"]) for p in ("eager", "compiled") if p in result})
    tags = {"gpu.names": str(result.get("gpu")), "kernels.patched": "; ".join(result.get("patched", []))}
    with RunRecorder(tracking_uri, experiment, name, params, tags) as recorder:
        recorder.log_metrics(ab_metrics(result))
        for path in sorted(out_dir.iterdir()):
            recorder.log_artifact(path)
        return recorder.run_id


def profile_forward(model: torch.nn.Module, inputs: dict, path: Path) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        model(**inputs)
        torch.cuda.synchronize()
    prof.export_chrome_trace(str(path))
    subprocess.run(["gzip", "-f", str(path)], check=False)


# A variant: the stock diffusers DiT, or the same weights with kernels/ swapped in, with the options of
# apply_triton_kernels it turns on (the GELU epilogue; the single blocks' proj_out without its cat).
VARIANTS: dict[str, dict[str, bool] | None] = {
    "stock": None,
    "triton": {},
    "triton_gelu": {"gelu_epilogue": True},
    "triton_gelu_split": {"gelu_epilogue": True, "split_proj_out": True},
}


def variant_transformer(variant: str) -> tuple[torch.nn.Module, list[str]]:
    """The FLUX.1-dev-size DiT (the same seeded weights for every variant) and what was patched into it."""
    from kernels.patch import apply_triton_kernels

    model = flux_transformer()
    options = VARIANTS[variant]
    return model, [] if options is None else apply_triton_kernels(model, **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="measure, writing here")
    where.add_argument("--log", type=Path, metavar="OUT", help="only log an earlier run's OUT to MLflow")
    parser.add_argument("--base", default="stock", choices=sorted(VARIANTS), help="the variant timed against")
    parser.add_argument("--candidate", default="triton", choices=sorted(VARIANTS), help="the variant timed")
    parser.add_argument("--rounds", type=int, default=300, help="paired rounds with torch.compile")
    parser.add_argument("--eager-rounds", type=int, default=30, help="paired rounds without (0: skip eager)")
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode for both variants")
    parser.add_argument(
        "--candidate-compile-mode",
        help="the candidate's own torch.compile mode (e.g. reduce-overhead: CUDA graphs against --compile-mode); "
        "the candidate may then be the base's variant",
    )
    parser.add_argument("--profile", action="store_true", help="also trace one compiled forward of each")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: SQLite under ./mlruns)")
    args = parser.parse_args(argv)
    if args.log is not None:
        if not (args.log / RESULT_FILE).is_file():
            parser.error(f"--log {args.log}: no {RESULT_FILE} there (the directory a measuring run wrote)")
        log_to_mlflow(args.log, args.tracking_uri)
        return
    modes = {"base": args.compile_mode, "candidate": args.candidate_compile_mode or args.compile_mode}
    if args.base == args.candidate and modes["base"] == modes["candidate"]:
        parser.error(
            f"--base and --candidate are both {args.base!r} compiled alike: choose two of "
            f"{', '.join(sorted(VARIANTS))}, or a --candidate-compile-mode"
        )
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU (the FLUX.1-dev-size DiT is 24 GB in bf16; both variants are resident)")
    args.out.mkdir(parents=True, exist_ok=True)
    # A variant compiled otherwise than the base is named for its mode too: triton_gelu_reduce_overhead.
    label = args.candidate
    if modes["candidate"] != modes["base"]:
        label = f"{args.candidate}_{modes['candidate'].replace('-', '_')}"
    names = (args.base, label)
    variant_of = {args.base: args.base, label: args.candidate}
    mode_of = {args.base: modes["base"], label: modes["candidate"]}
    result: dict = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "height": args.height,
        "width": args.width,
        "compile_mode": args.compile_mode,
        "base": args.base,
        "candidate": label,
        "candidate_compile_mode": modes["candidate"],
    }

    def save() -> None:  # after every phase, so a run cut off keeps what it measured
        (args.out / RESULT_FILE).write_text(json.dumps(result, indent=1))

    inputs = flux_forward_inputs(args.height, args.width)
    models = {}
    for name in names:
        models[name], patched = variant_transformer(variant_of[name])
        result["patched" if name == label else "patched_base"] = patched
    with torch.no_grad():
        # Same weights, same inputs: each variant's output must agree with the stock DiT's to bf16 rounding
        # before its speed counts.
        stock = models["stock"] if "stock" in models else variant_transformer("stock")[0]
        reference = stock(**inputs)[0]
        if "stock" not in models:
            del stock
            torch.cuda.empty_cache()
        result["agreement"] = {"eager": output_difference(reference, models[label](**inputs)[0])}
        if args.base != "stock":
            result["agreement"]["eager_base"] = output_difference(reference, models[args.base](**inputs)[0])
        save()
        if args.eager_rounds:
            eager = {name: (lambda m=models[name]: m.forward(**inputs)) for name in names}
            result["eager"] = measured_phase(args.out, "eager", eager, args.eager_rounds)
            save()
        first = {}
        for name in names:
            models[name].compile(mode=mode_of[name])
            begin = time.perf_counter()
            first[name] = models[name](**inputs)[0]
            torch.cuda.synchronize()
            result[f"compile_s_{name}"] = time.perf_counter() - begin
            save()
        result["agreement"]["compiled"] = output_difference(first[args.base], first[label])
        if args.base != "stock":
            result["agreement"]["compiled_vs_stock"] = output_difference(reference, first[label])
        print("agreement", json.dumps(result["agreement"]), flush=True)
        del first
        compiled = {name: (lambda m=models[name]: m(**inputs)) for name in names}
        result["compiled"] = measured_phase(args.out, "compiled", compiled, args.rounds)
        save()
        if args.profile:
            for name in names:
                profile_forward(models[name], inputs, args.out / f"compiled_{name}.trace.json")
    log_to_mlflow(args.out, args.tracking_uri)


if __name__ == "__main__":
    main()
