"""The one `nsys profile` command line both engines wrap their generation in (SGLang's command, the in-process
engine's child). Reading the report is the profile consumer's job (diffexp/profile/nsys.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def nsys_prefix(report: Path, delay_s: Optional[float] = None, duration_s: Optional[float] = None) -> list[str]:
    """`nsys profile` arguments that go in front of the engine's own command (CUDA trace, forked children)."""
    command = ["nsys", "profile", "-t", "cuda", "-o", str(report), "-f", "true", "--trace-fork-before-exec=true"]
    if delay_s is not None:
        command += ["--delay", f"{delay_s:g}"]
    if duration_s is not None:
        command += ["--duration", f"{duration_s:g}"]
    return command
