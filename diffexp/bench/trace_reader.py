"""Throughput and peak memory of the trace analyzer on large synthetic traces (not a test).

`python -m diffexp.bench.trace_reader --size-mb 600 --compare-mb 100` writes traces of those sizes by
replicating the recorded H100 fixture's event text (its exact layout and event mix; timestamps,
correlation ids and step numbers shifted per copy), then analyses each in a fresh child process and
reports MB of raw JSON per second and the child's peak RSS (see peak_rss_mb).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from diffexp.errors import DiffexpError

# The recorded H100 trace in the shared/ checkout beside the repository.
FIXTURE = Path(__file__).resolve().parents[3] / "shared/fixtures/traces/flux1dev_dit_eager_h100.trace.json.gz"
_NUMBERED = re.compile(r'("ts": |"correlation": |"External id": |"id": |denoising_step_)(\d+(?:\.\d+)?)')


def generate_trace(out: Path, size_mb: float, fixture: Path = FIXTURE) -> int:
    """Write a ≥ size_mb (raw) trace made of shifted copies of the fixture's events; returns bytes written."""
    if not fixture.is_file():
        raise DiffexpError(f"benchmark fixture {fixture} is missing (it lives in the shared/ checkout)")
    text = gzip.decompress(fixture.read_bytes()).decode("utf-8")
    opening = text.index("[", text.index('"traceEvents"')) + 1
    closing = text.rindex("]")
    head, body, tail = text[:opening], text[opening:closing].rstrip().rstrip(","), text[closing:]
    events = json.loads(text)["traceEvents"]
    span_us = max(e["ts"] + e.get("dur", 0) for e in events) - min(e["ts"] for e in events) + 1000.0
    id_stride = 1 + max(
        max(
            int(e.get("args", {}).get("correlation", 0)),
            int(e.get("args", {}).get("External id", 0)),
            int(e.get("id", 0)) if isinstance(e.get("id"), int) else 0,
        )
        for e in events
    )
    step_stride = 1 + max(
        (int(m.group(1)) for e in events if (m := re.search(r"denoising_step_(\d+)", str(e.get("name", ""))))),
        default=0,
    )
    copies = max(1, -(-int(size_mb * 1e6) // len(body.encode("utf-8"))))
    written = 0
    with open(out, "w", encoding="utf-8") as sink:
        written += sink.write(head)
        for copy in range(copies):
            written += sink.write(("," if copy else "") + _shifted(body, copy, span_us, id_stride, step_stride))
        written += sink.write("\n  " + tail)
    return written


def _shifted(body: str, copy: int, span_us: float, id_stride: int, step_stride: int) -> str:
    if copy == 0:
        return body

    def shift(match: re.Match[str]) -> str:
        key, number = match.group(1), match.group(2)
        if key == '"ts": ':
            return f"{key}{float(number) + copy * span_us:.3f}"
        stride = step_stride if key == "denoising_step_" else id_stride
        return f"{key}{int(number) + copy * stride}"

    return _NUMBERED.sub(shift, body)


def measure_child(trace: Path, parser: str) -> dict[str, float]:
    """Analyse in a fresh interpreter so its peak RSS is this analysis's alone."""
    command = [sys.executable, "-m", "diffexp.bench.trace_reader", "--child", str(trace), "--parser", parser]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DiffexpError(f"benchmark child failed on {trace}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident set size.

    Linux's VmHWM belongs to the current address space, so it starts afresh at exec; getrusage's
    ru_maxrss (the fallback elsewhere) also keeps the high-water mark of the parent that forked us.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(trace: Path, parser: str) -> None:
    from diffexp.profile.analysis import analyze_trace  # imported here so the baseline RSS includes it

    baseline_mb = peak_rss_mb()
    started, started_cpu = time.perf_counter(), time.process_time()
    analysis = analyze_trace(trace, parser=parser)  # type: ignore[arg-type]
    total_s, cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    print(
        json.dumps(
            {
                "raw_mb": analysis.read.raw_bytes / 1e6,
                "read_s": analysis.read_s,
                "total_s": total_s,
                "cpu_s": cpu_s,
                "parser": analysis.read.parser,
                "gpu_activities": int(analysis.kernels["count"].sum()),
                "steps": len(analysis.steps),
                "baseline_rss_mb": baseline_mb,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def run(sizes_mb: list[float], parsers: list[str], also_gzip: bool, workdir: Path, console: Console) -> list[dict]:
    rows = []
    for size_mb in sizes_mb:
        trace = workdir / f"synthetic_{int(size_mb)}mb.trace.json"
        with Progress(console=console, transient=True) as progress:
            progress.add_task(f"writing {trace.name}", total=None)
            generate_trace(trace, size_mb)
        variants = [trace]
        if also_gzip:
            packed = trace.with_suffix(".json.gz")
            with open(trace, "rb") as raw, gzip.open(packed, "wb", compresslevel=6) as sink:
                while block := raw.read(1 << 24):
                    sink.write(block)
            variants.append(packed)
        for variant in variants:
            for parser in parsers:
                result = measure_child(variant, parser)
                result.update(
                    file=variant.name,
                    mb_per_s_wall=result["raw_mb"] / result["total_s"],
                    mb_per_s_cpu=result["raw_mb"] / result["cpu_s"],
                )
                console.log(
                    f"{variant.name} ({parser}): {result['mb_per_s_cpu']:.0f} MB/s per CPU s, "
                    f"{result['mb_per_s_wall']:.0f} MB/s wall, peak RSS {result['peak_rss_mb']:.0f} MB"
                )
                rows.append(result)
        for variant in variants:
            variant.unlink()
    return rows


def markdown(rows: list[dict]) -> str:
    header = (
        "| trace | raw MB | parser | GPU activities | analyse CPU s | MB/s per CPU s | analyse wall s | MB/s wall "
        "| peak RSS MB | RSS after imports MB |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [
        f"| {r['file']} | {r['raw_mb']:.0f} | {r['parser']} | {r['gpu_activities']:,} | {r['cpu_s']:.1f} "
        f"| {r['mb_per_s_cpu']:.0f} | {r['total_s']:.1f} | {r['mb_per_s_wall']:.0f} | {r['peak_rss_mb']:.0f} "
        f"| {r['baseline_rss_mb']:.0f} |"
        for r in rows
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load}"
    return f"Measured {date.today().isoformat()} on {machine}; one process.\n\n" + "\n".join([header, *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.bench.trace_reader", description=__doc__)
    parser.add_argument("--size-mb", type=float, default=600.0, help="large trace size, raw MB [%(default)s]")
    parser.add_argument("--compare-mb", type=float, default=100.0, help="small trace for the memory comparison")
    parser.add_argument("--parsers", default="fast", help="comma-separated: fast,ijson [%(default)s]")
    parser.add_argument("--gzip", action="store_true", help="also measure the traces gzip-compressed")
    parser.add_argument("--workdir", type=Path, help="where the temporary traces go [system temp dir]")
    parser.add_argument("--markdown", type=Path, help="also write the result table to this file")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parser", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.parser)
        return 0
    console = Console()
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        rows = run([args.compare_mb, args.size_mb], args.parsers.split(","), args.gzip, Path(workdir), console)
    table = markdown(rows)
    print(table)  # plain print: a rich console would wrap the markdown rows
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
