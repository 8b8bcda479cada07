"""The one table from config fields to `sglang generate` flags, as SGLang 0.5.23 defines them.

Spellings, value forms and defaults were read from the 0.5.23 wheel: `ServerArgs.add_cli_args`
(runtime/server_args/server_args.py), `SamplingParams.add_cli_args` (configs/sample/sampling_params.py),
`PipelineConfig.add_cli_args` (configs/pipeline_configs/base.py) and the generate entry
(runtime/entrypoints/cli/generate.py). Where the guides differ, the source wins:
  - `--warmup` no longer exists (argparse rejects it as an ambiguous prefix of `--warmup-mode`,
    `--warmup-resolutions`, ...); request-based warmup is `--warmup-mode request`.
  - Offload flags are `StoreBoolean` (`--flag true|false`, bare `--flag` means true), so an unset
    tri-state field passes nothing and SGLang's own default (or its auto-tuner) decides.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from diffexp import rundir
from diffexp.config.schema import RESOLUTION_PRESETS, Config

# How a value is written: "value" → `--flag v`; "text" → `--flag=v` (free text that may start with
# '-'); "bool" → `--flag true|false` (SGLang's StoreBoolean); "switch" → bare `--flag` when true
# (argparse store_true); "preset" → `--<value>` (the resolution shortcuts).
KINDS = ("value", "text", "bool", "switch", "preset")

PRECISIONS = ("fp32", "fp16", "bf16")
# ServerArgs' --performance-mode choices (auto_tune.PERFORMANCE_MODES).
PERFORMANCE_MODES = ("manual", "auto", "speed", "memory")
BACKENDS = ("auto", "sglang", "diffusers")

# SGLang 0.5.23's attention backends: the lower-cased names of AttentionBackendEnum (runtime/platforms/interface.py)
# plus the aliases ServerArgs._normalize_attention_backend_name maps (fa3, fa4 → fa; cudnn_sdpa → torch_cudnn_sdpa).
ATTENTION_BACKENDS = (
    "fa", "fa2", "fa3", "fa4", "torch_sdpa", "torch_cudnn_sdpa", "cudnn_sdpa", "dynamic_cudnn_sdpa", "sage_attn",
    "sage_attn_3", "sparge_attn", "sliding_tile_attn", "video_sparse_attn", "video_sparse_attn_h3",
    "hybrid_window_attn_h3", "sparse_video_gen_2_attn", "vmoba_attn", "aiter", "aiter_sage", "sla_attn",
    "sage_sla_attn", "laser_attn", "block_sparse_attn", "rain_fusion_attn", "sol_attn", "subblock_sparse_attn",
    "cube_sparse_attn", "fp8_fa_sm120", "no_attention",
)  # fmt: skip
# SGLang's num_gpus default (ServerArgs.num_gpus); the flag is passed only when it differs.
DEFAULT_NUM_GPUS = 1


@dataclass(frozen=True)
class RunPaths:
    """Where the harness puts this run's files; all under the run directory."""

    run_dir: Path
    # The checkpoint path SGLang loads (built-in tiny models resolved to their directory).
    model_path: str

    @property
    def outputs(self) -> Path:
        return self.run_dir / rundir.OUTPUTS

    @property
    def perf_dump(self) -> Path:
        return self.run_dir / rundir.PERF_DUMP

    @property
    def log(self) -> Path:
        return self.run_dir / rundir.SGLANG_LOG

    @property
    def traces(self) -> Path:
        return self.run_dir / rundir.TRACES

    @property
    def generated_config(self) -> Path:
        return self.run_dir / "sglang_config.json"

    @property
    def nsys_report(self) -> Path:
        return self.run_dir / "profile"  # nsys appends .nsys-rep


@dataclass(frozen=True)
class Flag:
    flag: str
    kind: str
    # The value from the config (None: the flag is left out).
    value: Callable[[Config, RunPaths], Any]
    # The config field(s) it comes from, for humans reading the table.
    source: str


def _preset(c: Config) -> Optional[str]:
    s = c.model.sampling
    # width/height win over the preset (the schema's rule); SGLang itself would let the preset win.
    if s.width is not None and s.height is not None:
        return None
    return s.resolution


def _num_gpus(c: Config) -> Optional[int]:
    return c.parallel.num_gpus if c.parallel.num_gpus != DEFAULT_NUM_GPUS else None


def config_file(c: Config, p: RunPaths) -> Optional[str]:
    if c.engine.config_file:
        return c.engine.config_file
    return str(p.generated_config) if c.model.sglang_config else None


def warmup_mode(c: Config) -> Optional[str]:
    """compile.warmup → `request`; compile without warmup → `off`, stated: left unset, SGLang picks
    `server` for a compiled run, which `sglang generate` never runs (it still logs "with warmup excluded")."""
    if c.compile.warmup:
        return "request"
    return "off" if c.compile.enabled else None


def _torch_profile(c: Config) -> bool:
    return c.profile.mode == "torch"


FLAGS: tuple[Flag, ...] = (
    # model
    Flag("--model-path", "value", lambda c, p: p.model_path, "model.path"),
    Flag("--model-id", "value", lambda c, p: c.model.sglang_model_id, "model.sglang_model_id"),
    Flag("--pipeline-class-name", "value", lambda c, p: c.model.sglang_pipeline, "model.sglang_pipeline"),
    Flag("--backend", "value", lambda c, p: c.engine.backend, "engine.backend (null: SGLang's auto)"),
    Flag("--config", "value", config_file, "engine.config_file | model.sglang_config"),
    # sampling
    Flag("--prompt", "text", lambda c, p: c.model.sampling.prompt, "model.sampling.prompt"),
    Flag("--negative-prompt", "text", lambda c, p: c.model.sampling.negative_prompt, "model.sampling.negative_prompt"),
    Flag("--image-path", "value", lambda c, p: c.model.sampling.image_path, "model.sampling.image_path"),
    Flag("--width", "value", lambda c, p: c.model.sampling.width, "model.sampling.width"),
    Flag("--height", "value", lambda c, p: c.model.sampling.height, "model.sampling.height"),
    Flag("--<resolution>", "preset", lambda c, p: _preset(c), "model.sampling.resolution"),
    Flag("--num-frames", "value", lambda c, p: c.model.sampling.num_frames, "model.sampling.num_frames"),
    Flag("--fps", "value", lambda c, p: c.model.sampling.fps, "model.sampling.fps"),
    Flag(
        "--num-inference-steps",
        "value",
        lambda c, p: c.model.sampling.num_inference_steps,
        "model.sampling.num_inference_steps",
    ),
    Flag("--guidance-scale", "value", lambda c, p: c.model.sampling.guidance_scale, "model.sampling.guidance_scale"),
    Flag("--seed", "value", lambda c, p: c.model.sampling.seed, "model.sampling.seed"),
    # placement: manual keeps SGLang's auto-tuner and CFG auto-enabling off (engine.performance_mode)
    Flag("--performance-mode", "value", lambda c, p: c.engine.performance_mode, "engine.performance_mode"),
    # parallel
    Flag("--num-gpus", "value", lambda c, p: _num_gpus(c), "parallel.num_gpus (1 is SGLang's default)"),
    Flag("--tp-size", "value", lambda c, p: c.parallel.tp_degree, "parallel.tp_degree"),
    Flag("--ulysses-degree", "value", lambda c, p: c.parallel.ulysses_degree, "parallel.ulysses_degree"),
    Flag("--ring-degree", "value", lambda c, p: c.parallel.ring_degree, "parallel.ring_degree"),
    Flag("--enable-cfg-parallel", "switch", lambda c, p: c.parallel.cfg_parallel, "parallel.cfg_parallel"),
    Flag("--cfg-parallel-size", "value", lambda c, p: c.parallel.cfg_parallel_size, "parallel.cfg_parallel_size"),
    # offload (tri-state: None passes nothing)
    Flag("--dit-cpu-offload", "bool", lambda c, p: c.offload.dit_cpu, "offload.dit_cpu"),
    Flag("--dit-layerwise-offload", "bool", lambda c, p: c.offload.dit_layerwise, "offload.dit_layerwise"),
    Flag("--dit-offload-prefetch-size", "value", lambda c, p: c.offload.prefetch_size, "offload.prefetch_size"),
    Flag("--text-encoder-cpu-offload", "bool", lambda c, p: c.offload.text_encoder_cpu, "offload.text_encoder_cpu"),
    Flag("--image-encoder-cpu-offload", "bool", lambda c, p: c.offload.image_encoder_cpu, "offload.image_encoder_cpu"),
    Flag("--vae-cpu-offload", "bool", lambda c, p: c.offload.vae_cpu, "offload.vae_cpu"),
    Flag("--pin-cpu-memory", "bool", lambda c, p: c.offload.pin_cpu_memory, "offload.pin_cpu_memory"),
    # kernels and compilation
    Flag("--attention-backend", "value", lambda c, p: c.attention.backend, "attention.backend"),
    Flag("--enable-torch-compile", "switch", lambda c, p: c.compile.enabled, "compile.enabled"),
    Flag(
        "--warmup-mode",
        "value",
        lambda c, p: warmup_mode(c),
        "compile.warmup (the guides' --warmup); off for compile without warmup",
    ),
    Flag("--dit-precision", "value", lambda c, p: c.engine.dit_precision, "engine.dit_precision"),
    Flag("--vae-precision", "value", lambda c, p: c.engine.vae_precision, "engine.vae_precision"),
    # torch profiler
    Flag("--profile", "switch", lambda c, p: _torch_profile(c), "profile.mode=torch"),
    Flag(
        "--num-profiled-timesteps",
        "value",
        lambda c, p: c.profile.num_steps if _torch_profile(c) and not c.profile.all_stages else None,
        "profile.num_steps",
    ),
    Flag(
        "--profile-all-stages", "switch", lambda c, p: _torch_profile(c) and c.profile.all_stages, "profile.all_stages"
    ),
    # outputs and logging
    Flag("--save-output", "switch", lambda c, p: c.engine.save_output is True, "engine.save_output=true"),
    Flag("--no-save-output", "switch", lambda c, p: c.engine.save_output is False, "engine.save_output=false"),
    Flag("--output-path", "value", lambda c, p: str(p.outputs), "<run_dir>/outputs (harness)"),
    Flag("--perf-dump-path", "value", lambda c, p: str(p.perf_dump), "<run_dir>/perf_dump.json (harness)"),
    Flag("--log-level", "value", lambda c, p: c.engine.log_level, "engine.log_level"),
)

# Flags the harness always adds to place files in the run directory; not part of any recipe.
HARNESS_FLAGS = ("--output-path", "--perf-dump-path")
# Flags that take no value / an optional true|false value, by spelling (for parsing command lines).
SWITCHES = frozenset(f.flag for f in FLAGS if f.kind == "switch") | {f"--{name}" for name in RESOLUTION_PRESETS}
BOOLEANS = frozenset(f.flag for f in FLAGS if f.kind == "bool")


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(flag: Flag, value: Any) -> list[str]:
    if value is None or (value is False and flag.kind in ("switch", "preset")):
        return []
    if flag.kind == "switch":
        return [flag.flag]
    if flag.kind == "preset":
        return [f"--{value}"]
    if flag.kind == "text":
        return [f"{flag.flag}={value}"]
    return [flag.flag, _format(value)]


def generate_args(cfg: Config, paths: RunPaths) -> list[str]:
    """The arguments after `sglang generate`, in table order, then engine.extra_args verbatim."""
    args: list[str] = []
    for flag in FLAGS:
        args += render(flag, flag.value(cfg, paths))
    return args + list(cfg.engine.extra_args)


def nsys_prefix(cfg: Config, paths: RunPaths) -> list[str]:
    """`nsys profile` around the whole CLI (the guide's Level-2 pass A); empty unless profile.mode=nsys."""
    if cfg.profile.mode != "nsys":
        return []
    from diffexp.engines.nsys import nsys_prefix as wrap  # the one nsys command line, shared by both engines

    return wrap(paths.nsys_report, cfg.profile.nsys_delay_s, cfg.profile.nsys_duration_s)


def command(cfg: Config, paths: RunPaths) -> list[str]:
    """The full argument list: [nsys profile …] <engine.executable> generate <flags>."""
    return [*nsys_prefix(cfg, paths), *shlex.split(cfg.engine.executable), "generate", *generate_args(cfg, paths)]


def problems(cfg: Config) -> list[str]:
    """What this engine cannot express, in ConfigError's "field=value: what is allowed" form."""
    out: list[str] = []
    m, e = cfg.model, cfg.engine
    backend = cfg.attention.backend
    if backend is not None and backend not in ATTENTION_BACKENDS:
        out.append(f"attention.backend={backend!r}: engine sglang supports {', '.join(ATTENTION_BACKENDS)}")
    if cfg.kernels.impl != "torch":
        out.append(f"kernels.impl={cfg.kernels.impl!r}: kernel swapping needs the in-process engine (engine=diffusers)")
    if m.weights == "random":
        out.append(
            "model.weights=random: engine sglang loads checkpoints only (use weights=pretrained or tiny, or engine=diffusers)"
        )
    for name in ("dit_precision", "vae_precision"):
        value = getattr(e, name)
        if value is not None and value not in PRECISIONS:
            out.append(f"engine.{name}={value!r}: allowed values are {', '.join(PRECISIONS)}")
    if e.backend is not None and e.backend not in BACKENDS:
        out.append(
            f"engine.backend={e.backend!r}: allowed values are {', '.join(BACKENDS)} or null (pass no --backend)"
        )
    if e.performance_mode is not None and e.performance_mode not in PERFORMANCE_MODES:
        out.append(
            f"engine.performance_mode={e.performance_mode!r}: allowed values are {', '.join(PERFORMANCE_MODES)} "
            "or null (SGLang's default, auto)"
        )
    if e.config_file and m.sglang_config:
        out.append(f"engine.config_file={e.config_file!r} with model.sglang_config set: choose one --config source")
    return out
