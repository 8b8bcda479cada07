"""Paired A/B of one FLUX.1-dev-size DiT forward: stock modules vs `kernels=triton`, eager and compiled.

Whole-pipeline runs (diffexp.bench.flux_dit) give the MLflow pair, but a difference of 1 % drowns in
their run-to-run noise: a power-capped H100 moves its clocks by several percent between runs. Here both
variants live in one process (two copies of the same seeded weights) and their forwards alternate
(A B, B A, ...), each timed with CUDA events, so drift hits both alike and the per-round differences give
the gain with a confidence interval. Host time per forward (until the call returns, before the GPU is
done) shows whether the host ever falls behind. nvidia-smi samples SM clock and power meanwhile.

    python -m diffexp.bench.transformer_ab --out runs/ab --rounds 300 --profile

Writes OUT/transformer_ab.json (and with --profile, one torch.profiler trace of a compiled forward of each
variant, for `python -m diffexp.profile OUT/compiled_stock.trace.json.gz OUT/compiled_triton.trace.json.gz`),
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


def paired_summary(stock_ms: list[float], triton_ms: list[float]) -> dict:
    """Gain of triton over stock from paired rounds: mean difference and its 95 % confidence interval."""
    diffs = [a - b for a, b in zip(stock_ms, triton_ms)]
    half_width = 1.96 * statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    mean_stock = statistics.fmean(stock_ms)
    return {
        "rounds": len(diffs),
        "stock_ms_median": statistics.median(stock_ms),
        "triton_ms_median": statistics.median(triton_ms),
        "stock_ms_mean": mean_stock,
        "triton_ms_mean": statistics.fmean(triton_ms),
        "stock_ms_sd": statistics.stdev(stock_ms) if len(diffs) > 1 else 0.0,
        "triton_ms_sd": statistics.stdev(triton_ms) if len(diffs) > 1 else 0.0,
        "gain_ms_mean": statistics.fmean(diffs),
        "gain_ms_ci95": half_width,
        "gain_ms_median": statistics.median(diffs),
        "gain_pct": 100 * statistics.fmean(diffs) / mean_stock,
        "triton_faster_in_pct_of_rounds": 100 * sum(d > 0 for d in diffs) / len(diffs),
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


def interleaved(stock: Callable, triton: Callable, rounds: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        stock()
        triton()
    times: dict[str, list[float]] = {"stock": [], "triton": [], "stock_host": [], "triton_host": []}
    for i in range(rounds):
        order = (("stock", stock), ("triton", triton)) if i % 2 == 0 else (("triton", triton), ("stock", stock))
        for name, fn in order:
            device_ms, host_ms = timed_ms(fn)
            times[name].append(device_ms)
            times[f"{name}_host"].append(host_ms)
    summary = paired_summary(times["stock"], times["triton"])
    summary["stock_host_ms_median"] = statistics.median(times["stock_host"])
    summary["triton_host_ms_median"] = statistics.median(times["triton_host"])
    summary["stock_ms"], summary["triton_ms"] = times["stock"], times["triton"]
    return summary


def measured_phase(out: Path, phase: str, stock: Callable, triton: Callable, rounds: int) -> dict:
    """`rounds` paired rounds while nvidia-smi samples into OUT/smi_<phase>.csv; the summary, clocks included."""
    samples = out / f"smi_{phase}.csv"
    with gpu_sampler(samples):
        summary = interleaved(stock, triton, rounds)
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
    name = f"flux1_dev {result.get('height')}x{result.get('width')} stock vs triton ({result.get('compile_mode')})"
    params = {k: str(result.get(k)) for k in ("gpu", "torch", "height", "width", "compile_mode")}
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="measure, writing here")
    where.add_argument("--log", type=Path, metavar="OUT", help="only log an earlier run's OUT to MLflow")
    parser.add_argument("--rounds", type=int, default=300, help="paired rounds with torch.compile")
    parser.add_argument("--eager-rounds", type=int, default=30, help="paired rounds without (0: skip eager)")
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode for both variants")
    parser.add_argument("--profile", action="store_true", help="also trace one compiled forward of each")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: SQLite under ./mlruns)")
    args = parser.parse_args(argv)
    if args.log is not None:
        if not (args.log / RESULT_FILE).is_file():
            parser.error(f"--log {args.log}: no {RESULT_FILE} there (the directory a measuring run wrote)")
        log_to_mlflow(args.log, args.tracking_uri)
        return
    if not torch.cuda.is_available():
        parser.error("needs a CUDA GPU (the FLUX.1-dev-size DiT is 24 GB in bf16; both variants are resident)")
    args.out.mkdir(parents=True, exist_ok=True)
    from kernels.patch import apply_triton_kernels

    result: dict = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "height": args.height,
        "width": args.width,
        "compile_mode": args.compile_mode,
    }

    def save() -> None:  # after every phase, so a run cut off keeps what it measured
        (args.out / RESULT_FILE).write_text(json.dumps(result, indent=1))

    stock, triton = flux_transformer(), flux_transformer()
    result["patched"] = apply_triton_kernels(triton)
    inputs = flux_forward_inputs(args.height, args.width)
    with torch.no_grad():
        # Same weights, same inputs: the variants' outputs must agree to bf16 rounding before their speed counts.
        result["agreement"] = {"eager": output_difference(stock(**inputs)[0], triton(**inputs)[0])}
        save()
        if args.eager_rounds:
            eager = (lambda: stock.forward(**inputs), lambda: triton.forward(**inputs))
            result["eager"] = measured_phase(args.out, "eager", *eager, args.eager_rounds)
            save()
        first = {}
        for name, model in (("stock", stock), ("triton", triton)):
            model.compile(mode=args.compile_mode)
            begin = time.perf_counter()
            first[name] = model(**inputs)[0]
            torch.cuda.synchronize()
            result[f"compile_s_{name}"] = time.perf_counter() - begin
            save()
        result["agreement"]["compiled"] = output_difference(first["stock"], first["triton"])
        print("agreement", json.dumps(result["agreement"]), flush=True)
        del first
        result["compiled"] = measured_phase(
            args.out, "compiled", lambda: stock(**inputs), lambda: triton(**inputs), args.rounds
        )
        save()
        if args.profile:
            for name, model in (("stock", stock), ("triton", triton)):
                profile_forward(model, inputs, args.out / f"compiled_{name}.trace.json")
    log_to_mlflow(args.out, args.tracking_uri)


if __name__ == "__main__":
    main()
