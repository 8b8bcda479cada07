"""torch.profiler capture for the in-process engine, with scopes a trace analysis can attribute time to.

Scopes (record_function): `denoise_step_<i>` around each denoise step, `<blocks>.<j>` around each DiT
block (e.g. `transformer_blocks.3`, `single_transformer_blocks.12`, `blocks.0`), and
`<blocks>.<j>.<part>` around its sub-modules, where part is norm, attn or mlp.
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
from contextlib import ExitStack
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

log = logging.getLogger(__name__)

# Sub-module names in diffusers' FLUX / Wan / Qwen-Image blocks, by the part of the block they are.
PARTS = (
    (re.compile(r"^(norm\d*|norm1_context|norm2_context|norm_added_q|norm_out)$"), "norm"),
    (re.compile(r"^(attn\d*|attn)$"), "attn"),
    (re.compile(r"^(ff|ff_context|mlp|proj_mlp|ffn)$"), "mlp"),
)


def _part_of(name: str) -> str | None:
    for pattern, part in PARTS:
        if pattern.match(name):
            return part
    return None


class _Scope:
    """A record_function opened in a forward pre-hook and closed in the forward hook."""

    def __init__(self, name: str):
        self.name = name
        self.stack: list = []

    def enter(self, *_):
        scope = record_function(self.name)
        scope.__enter__()
        self.stack.append(scope)

    def exit(self, *_):
        if self.stack:
            self.stack.pop().__exit__(None, None, None)


def annotate_blocks(transformer: torch.nn.Module, stack: ExitStack) -> int:
    """Add block and sub-part scopes to every DiT block; hooks are removed when `stack` closes."""
    count = 0
    for path, blocks in transformer.named_modules():
        # Block lists sit on the transformer, or one level down when a wrapper (CFG-parallel) holds it.
        if not isinstance(blocks, torch.nn.ModuleList) or path.count(".") > 1:
            continue
        list_name = path.rsplit(".", 1)[-1]
        for index, block in enumerate(blocks):
            targets = [(f"{list_name}.{index}", block)]
            targets += [(f"{list_name}.{index}.{_part_of(n)}", m) for n, m in block.named_children() if _part_of(n)]
            for scope_name, module in targets:
                scope = _Scope(scope_name)
                stack.callback(module.register_forward_pre_hook(scope.enter).remove)
                stack.callback(module.register_forward_hook(scope.exit).remove)
            count += 1
    return count


class StepProfiler:
    """Profiles the first `num_steps` denoise steps (-1: all), or the whole generation with all_stages."""

    def __init__(self, device: torch.device, num_steps: int, all_stages: bool, trace_dir: Path):
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        self.profiler = profile(activities=activities, record_shapes=False, with_stack=False)
        self.num_steps, self.all_stages, self.trace_dir = num_steps, all_stages, trace_dir
        self.step = 0
        self.active = False
        self.step_scope: _Scope | None = None

    def start(self) -> None:
        if not self.active:
            self.profiler.start()
            self.active = True

    def stop(self) -> None:
        if self.active:
            self.profiler.stop()
            self.active = False

    def on_step_start(self) -> None:
        if self.num_steps == -1 or self.step < self.num_steps:
            self.start()
            self.step_scope = _Scope(f"denoise_step_{self.step}")
            self.step_scope.enter()

    def on_step_end(self) -> None:
        if self.step_scope is not None:
            self.step_scope.exit()
            self.step_scope = None
        self.step += 1
        if not self.all_stages and self.num_steps != -1 and self.step >= self.num_steps:
            self.stop()

    def export(self, name: str) -> Path:
        self.stop()
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        raw = self.trace_dir / f"{name}.trace.json"
        self.profiler.export_chrome_trace(str(raw))
        gz = raw.with_suffix(".json.gz")
        with raw.open("rb") as src, gzip.open(gz, "wb") as dst:
            shutil.copyfileobj(src, dst)
        raw.unlink()
        log.info("profiler trace: %s", gz)
        return gz


# Artifacts a profiled result carries for the run to analyse once the engine is done (diffexp.profile.of_run
# reads them under the same names): the torch trace (rank 0's in a parallel run) and the nsys report.
TRACE_FILE = "trace_file"
NSYS_REPORT = "nsys_report"


def profile_outputs(cfg, traces_dir: Path, nsys_report: Path) -> dict[str, str]:
    """What a subprocess engine's profiled run left to analyse: SGLang's rank-0 torch trace, or the nsys report."""
    if cfg.profile.mode == "torch":
        traces = sorted(traces_dir.glob("*rank0*.trace.json*"), key=lambda p: p.stat().st_mtime) or sorted(
            traces_dir.glob("*.trace.json*"), key=lambda p: p.stat().st_mtime
        )
        if not traces:
            log.warning("profile=torch: no trace under %s to analyse", traces_dir)
            return {}
        return {TRACE_FILE: str(traces[-1])}
    if cfg.profile.mode == "nsys":
        report = nsys_report.with_suffix(".nsys-rep")
        if not report.is_file():
            log.warning("profile=nsys: no report at %s", report)
            return {}
        return {NSYS_REPORT: str(report)}
    return {}
