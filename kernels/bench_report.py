"""The benchmark's record (one Timing per kernel, shape, dtype and contender) and its files: JSON and a table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass
class Timing:
    kernel: str
    shape: str
    dtype: str
    impl: str
    median_us: float
    gbps: float
    pct_of_copy: float
    host_us: Optional[float] = None
    max_rel_err: Optional[float] = None


def _cells(impls: dict, tri):
    """Formatters for one row's cells; '–' where a contender was not measured."""

    def us(impl: str) -> str:
        return f"{impls[impl].median_us:.1f}" if impl in impls else "–"

    def speedup(impl: str) -> str:
        return f"{impls[impl].median_us / tri.median_us:.2f}" if impl in impls else "–"

    def same_size(impl: str) -> str:
        return f"{100 * impls[impl].median_us / tri.median_us:.0f}" if impl in impls else "–"

    def host(impl: str) -> str:
        return f"{impls[impl].host_us:.0f}" if impl in impls and impls[impl].host_us is not None else "–"

    return us, speedup, same_size, host


def markdown_table(timings: list[Timing], env: dict[str, Any]) -> str:
    """One row per (kernel, shape, dtype): Triton's time, bandwidth, share of copy, and each contender."""
    rows: dict[tuple[str, str, str], dict[str, Timing]] = {}
    for t in timings:
        rows.setdefault((t.kernel, t.shape, t.dtype), {})[t.impl] = t
    lines = [
        f"{env['device']}, copy bandwidth {env['copy_gbps']:.0f} GB/s (read + write); torch {env['torch']}, "
        f"triton {env['triton']}; {env['date']}",
        "",
        "Device µs per call (CUDA graph, inputs not in L2); GB/s and % copy for Triton; × = contender time / Triton's;",
        "host µs = CPU time per eager call (Python, checks, dispatch, launch); rel err = ||triton − fp32 ref|| / ||ref||;",
        "copy µs = a plain copy of the same bytes, timed the same way; % of same-size copy = copy µs / triton µs.",
        "",
        "| kernel | shape | dtype | triton µs | GB/s | % copy | copy µs | % of same-size copy | eager µs | builtin µs "
        "| compile µs | × eager | × builtin | × compile | host µs triton | host µs builtin | rel err |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (kernel, shape, dtype), impls in rows.items():
        tri = impls["triton"]

        us, speedup, same_size, host = _cells(impls, tri)

        lines.append(
            f"| {kernel} | {shape} | {dtype} | {tri.median_us:.1f} | {tri.gbps:.0f} | {tri.pct_of_copy:.0f} | "
            f"{us('copy')} | {same_size('copy')} | {us('eager')} | {us('builtin')} | {us('compile')} | "
            f"{speedup('eager')} | {speedup('builtin')} | {speedup('compile')} | "
            f"{host('triton')} | {host('builtin')} | {tri.max_rel_err:.1e} |"
        )
    sweeps = [t for t in timings if t.impl.startswith("triton[")]
    if sweeps:
        lines += ["", "Launch sweep (block_m, num_warps):", "", "| kernel | shape | config | µs | % copy |"]
        lines += ["|---|---|---|---:|---:|"]
        lines += [f"| {t.kernel} | {t.shape} | {t.impl} | {t.median_us:.1f} | {t.pct_of_copy:.0f} |" for t in sweeps]
    return "\n".join(lines) + "\n"


def write_results(timings: list[Timing], env: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps({"env": env, "timings": [asdict(t) for t in timings]}, indent=1))
    md_path.write_text(markdown_table(timings, env))
    return json_path, md_path
