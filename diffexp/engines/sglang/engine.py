"""The SGLang engine: `sglang generate` as a subprocess, measured from its own perf dump and log."""

from __future__ import annotations

import json
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from diffexp import rundir
from diffexp.config.schema import Config
from diffexp.engines.outputs import output_shape_tags
from diffexp.engines.sglang import env as run_env
from diffexp.engines.sglang import flags, harvest, perf_dump, resolved
from diffexp.errors import ConfigError, DiffexpError
from diffexp.results import RunResult
from diffexp.supervise import run_streaming

log = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4", ".webm", ".mov", ".wav", ".glb", ".obj", ".ply")
BUILTIN_PREFIX = "builtin://"


@dataclass(frozen=True)
class Launch:
    """Everything a run needs, decided before anything starts (the dry run prints exactly this)."""

    command: list[str]
    env: dict[str, str]  # set on top of the inherited environment
    paths: flags.RunPaths
    gpu_reason: str
    config_payload: Optional[dict]
    warnings: list[str]


def resolve_model_path(cfg: Config) -> str:
    path = cfg.model.path
    if cfg.model.weights == "tiny" or path.startswith(BUILTIN_PREFIX):
        from diffexp.models.tiny import ensure_tiny_checkpoint

        name = path[len(BUILTIN_PREFIX) :] if path.startswith(BUILTIN_PREFIX) else (cfg.model.arch or cfg.model.name)
        return str(ensure_tiny_checkpoint(name))
    return path


def prepare(cfg: Config, run_dir: Path, gpus=None) -> Launch:
    problems = flags.problems(cfg)
    if problems:
        raise ConfigError(problems)
    paths = flags.RunPaths(run_dir=Path(run_dir).resolve(), model_path=resolve_model_path(cfg))
    cuda_visible, gpu_reason = run_env.choose_gpus(cfg, gpus)
    warnings = [w for w in (run_env.gated_warning(cfg),) if w]
    if cfg.compile.mode:
        warnings.append(f"compile.mode={cfg.compile.mode!r}: sglang generate has no flag for it; ignored")
    payload = dict(cfg.model.sglang_config) if cfg.model.sglang_config and not cfg.engine.config_file else None
    return Launch(
        command=flags.command(cfg, paths),
        env=run_env.run_env(cfg, paths, cuda_visible),
        paths=paths,
        gpu_reason=gpu_reason,
        config_payload=payload,
        warnings=warnings,
    )


def script_text(launch: Launch) -> str:
    """A copy-pastable shell script: environment, the generated --config file, the command."""
    lines = ["# sglang engine" + (f"; GPUs: {launch.gpu_reason}" if launch.gpu_reason else "")]
    lines += [f"# WARNING: {w}" for w in launch.warnings]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in launch.env.items()]
    if launch.config_payload is not None:
        target = launch.paths.generated_config
        lines.append(
            f"mkdir -p {shlex.quote(str(target.parent))} && printf '%s\\n' "
            f"{shlex.quote(json.dumps(launch.config_payload))} > {shlex.quote(str(target))}"
        )
    lines.append(shlex.join(launch.command))
    return "\n".join(lines) + "\n"


def collect_outputs(outputs_dir: Path) -> list[str]:
    """Generated images/videos/meshes under the output dir (the CLI was told --output-path there)."""
    if not outputs_dir.is_dir():
        return []
    return sorted(str(p) for p in outputs_dir.rglob("*") if p.is_file() and p.suffix.lower() in OUTPUT_SUFFIXES)


def failure_message(returncode: int, tail: list[str], figures: harvest.LogFigures, log_path: Path) -> str:
    head = f"sglang generate exited with code {returncode} (log: {log_path})"
    if returncode == 0 and figures.failure_lines:
        head = f"sglang generate exited 0 but the request failed: {figures.failure_lines[-1][:300]} (log: {log_path})"
    if figures.oom_lines:
        head = (
            f"sglang generate ran out of memory: {figures.oom_lines[-1][:300]}\n"
            "Try CPU/layerwise offload (offload=layerwise or low_vram), more GPUs (parallel=...), "
            f"or a smaller resolution/frame count. Log: {log_path}"
        )
    return head + "\nlast lines:\n" + "\n".join(f"  {line}" for line in tail[-25:])


def record_resolved(result: RunResult, cfg: Config, figures: harvest.LogFigures) -> None:
    """What SGLang settled on becomes the run's `resolved.*` params and tags; a contradiction is warned loudly."""
    if figures.server_args is not None:
        result.resolved = resolved.resolved_params(figures.server_args)
    result.tags.update(resolved.tags(cfg, figures.server_args))
    if resolved.TAG_MISMATCH in result.tags:
        banner = "!" * 78
        log.warning(
            "\n%s\nSGLang did NOT run what was asked: %s\n%s", banner, result.tags[resolved.TAG_MISMATCH], banner
        )
    if resolved.TAG_AUTO_TUNED in result.tags:
        log.warning("auto-tuned baseline (%s): SGLang chose the placement", result.tags[resolved.TAG_AUTO_TUNED])


class SGLangEngine:
    def prepare(self, cfg: Config) -> None:
        """Nothing to import: the work happens in `sglang generate`."""

    def dry_run_text(self, cfg: Config) -> str:
        return script_text(prepare(cfg, Path(cfg.output_dir)))

    def run(self, cfg: Config, run_dir: Path) -> RunResult:
        launch = prepare(cfg, run_dir)
        paths = launch.paths
        for folder in (paths.run_dir, paths.outputs, paths.traces):
            folder.mkdir(parents=True, exist_ok=True)
        for warning in launch.warnings:
            log.warning(warning)
        if launch.config_payload is not None:
            paths.generated_config.write_text(json.dumps(launch.config_payload, indent=2) + "\n")
        (paths.run_dir / "command.sh").write_text(script_text(launch))
        log.info(
            "GPUs: CUDA_VISIBLE_DEVICES=%s (%s)",
            launch.env.get("CUDA_VISIBLE_DEVICES", "<inherited>"),
            launch.gpu_reason,
        )
        log.info("running: %s", shlex.join(launch.command))

        returncode, tail = run_streaming(launch.command, {**os.environ, **launch.env}, paths.log, cfg.engine.timeout_s)
        figures = harvest.parse_log(paths.log.read_text(errors="replace") if paths.log.is_file() else "")
        if returncode != 0 or (figures.failure_lines and not paths.perf_dump.is_file()):
            raise DiffexpError(failure_message(returncode, tail, figures, paths.log))

        dump, dump_problem = None, None
        if paths.perf_dump.is_file():
            try:
                dump = perf_dump.read_perf_dump(paths.perf_dump)
            except DiffexpError as exc:  # kept as an artifact; its figures are not used
                dump_problem = str(exc)
                log.warning("UNUSABLE PERF DUMP: %s; figures come from the log's timing lines", exc)
        else:
            log.warning("no perf dump at %s; figures come from the log's timing lines", paths.perf_dump)
        result = harvest.build_result(
            dump, figures, diffusers_baseline=cfg.engine.backend == "diffusers", profiled=cfg.profile.mode != "off"
        )
        if dump_problem:
            result.tags["perf_dump.problem"] = dump_problem[:500]
        result.outputs = collect_outputs(paths.outputs)
        s = cfg.model.sampling
        result.tags.update(output_shape_tags(result.outputs, s.width, s.height, s.num_frames))
        record_resolved(result, cfg, figures)
        result.tags["sglang.sync_stage_profiling"] = (
            "true" if launch.env.get(run_env.SYNC_STAGE_PROFILING) == "1" else "false"
        )
        result.artifacts.update(self._artifacts(launch, figures))
        if cfg.profile.mode != "off":  # the run analyses what SGLang left (diffexp.profile.of_run)
            from diffexp.engines.profiling import profile_outputs  # torch only when profiling

            result.artifacts.update(profile_outputs(cfg, paths.traces, paths.nsys_report))
        result.tags["engine"] = "sglang"
        if "CUDA_VISIBLE_DEVICES" in launch.env:
            result.tags["cuda_visible_devices"] = launch.env["CUDA_VISIBLE_DEVICES"]
        if not result.valid:
            log.error("run invalid: %s", result.invalid_reason)
        return result

    @staticmethod
    def _artifacts(launch: Launch, figures: harvest.LogFigures) -> dict[str, str]:
        paths = launch.paths
        found = {
            "sglang_log": paths.log,
            "command": paths.run_dir / "command.sh",
            "perf_dump": paths.perf_dump,
            "sglang_config": paths.generated_config,
            "nsys_report": paths.nsys_report.with_suffix(".nsys-rep"),
        }
        if figures.tuning_lines:
            tuning = paths.run_dir / "sglang_auto_tuning.txt"
            tuning.write_text("\n".join(figures.tuning_lines) + "\n")
            found["sglang_auto_tuning"] = tuning
        if figures.server_args is not None:
            settled = paths.run_dir / "sglang_server_args.json"
            settled.write_text(json.dumps(figures.server_args, indent=2, sort_keys=True) + "\n")
            found["sglang_server_args"] = settled
        if figures.residency_lines:
            advice = paths.run_dir / "residency_advice.txt"
            advice.write_text("\n".join(figures.residency_lines) + "\n")
            found["residency_advice"] = advice
        artifacts = {name: str(path) for name, path in found.items() if path.is_file()}
        if paths.traces.is_dir() and any(paths.traces.iterdir()):
            artifacts[rundir.TRACES] = str(paths.traces)
        return artifacts
