"""Semantic validation: the only place that knows what a valid run is.

`validate` checks the config alone (cheap, before anything runs); `check_launch` checks the
config against this machine (GPUs visible, tools on PATH, input files) right before launch.
Both collect every problem and raise one ConfigError naming field, value and what is allowed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from diffexp.config.arch import arch_names, arch_spec
from diffexp.config.schema import RESOLUTION_PRESETS, Config
from diffexp.config.shapes import shape_problems
from diffexp.errors import ConfigError
from diffexp.gpus import visible_gpu_count

ENGINES = ("diffusers", "sglang")
WEIGHTS = ("pretrained", "random", "tiny")
DTYPES = ("bfloat16", "float16", "float32")
TASKS = ("t2i", "t2i_turbo", "image_edit", "t2v", "ti2v", "i2v", "shape")
# Tasks whose pipelines are conditioned on an input image.
IMAGE_TASKS = ("image_edit", "ti2v", "i2v", "shape")
VIDEO_TASKS = ("t2v", "ti2v", "i2v")
PROFILE_MODES = ("off", "torch", "nsys")
KERNEL_IMPLS = ("torch", "triton")
# The model families kernels.patch.apply_triton_kernels patches: FLUX.1 and Wan with the fused ops, Qwen-Image,
# LTX-2 and JoyAI with the GELU epilogue alone (their MLPs are diffusers' FeedForward with the tanh GELU).
EPILOGUE_ONLY = ("qwen_image", "ltx2", "joyai")
TRITON_FAMILIES = ("flux", "wan", *EPILOGUE_ONLY)
# kernels.split_proj_out acts on FLUX's single blocks only: no other family has a proj_out of a cat.
SPLIT_PROJ_OUT_FAMILIES = ("flux",)
TRITON_UNPATCHED = {
    "zimage": "SwiGLU MLPs, no tanh GELU; its own modulation and rotary forms",
    "flux2": "SwiGLU MLPs, no tanh GELU; its own modulation and rotary forms",
}
DEVICES = ("auto", "cpu", "cuda")


def _allowed(values) -> str:
    return ", ".join(str(v) for v in values)


def problems(cfg: Config) -> list[str]:
    """What is wrong with the config itself; each engine checks what it can run (`diffexp.engines.validate`)."""
    return [*_check_model(cfg), *_check_parallel(cfg), *_check_offload(cfg), *_check_engine(cfg), *_check_measure(cfg)]


def validate(cfg: Config) -> None:
    """Config-level checks only: `diffexp.engines.validate` adds the engine's own and is what runs call."""
    found = problems(cfg)
    if found:
        raise ConfigError(found)


def _check_measure(cfg: Config) -> list[str]:
    m, problems = cfg.measure, []
    if m.repeats is not None and m.repeats < 1:
        problems.append(f"measure.repeats={m.repeats}: must be at least 1 (or null: 5 on a GPU, 1 on CPU)")
    if m.replicates < 1:
        problems.append(f"measure.replicates={m.replicates}: must be at least 1")
    if m.max_warmup_runs < 1:
        problems.append(f"measure.max_warmup_runs={m.max_warmup_runs}: must be at least 1")
    if not 0 < m.warmup_tolerance < 1:
        problems.append(f"measure.warmup_tolerance={m.warmup_tolerance}: must be a fraction in (0, 1)")
    if m.gpu_sample_hz <= 0:
        problems.append(f"measure.gpu_sample_hz={m.gpu_sample_hz}: must be positive")
    return problems + (_check_floor(cfg) if m.floor else [])


def _check_floor(cfg: Config) -> list[str]:
    """measure.floor=true: diffexp.run counts the step on the in-process diffusers pipeline, in its transformer."""
    out = []
    if cfg.engine.name != "diffusers":
        out.append(
            f"measure.floor=true with engine.name={cfg.engine.name!r}: the floor is counted on the in-process "
            "diffusers pipeline; allowed with engine=diffusers (the floor of another engine's run: "
            "python -m diffexp.floor model=... engine=diffusers --run RUN_ID)"
        )
    arch = arch_spec(cfg.model.arch) if cfg.model.arch else None
    if arch is None or "transformer" not in arch.get("components", {}):
        out.append(
            f"measure.floor=true with model.arch={cfg.model.arch!r}: the floor counts the model's transformer, "
            "which its architecture file declares; allowed: model.arch naming a file in conf/arch/ with a "
            f"transformer component ({_allowed(arch_names())})"
        )
    return out


def _check_model(cfg: Config) -> list[str]:
    m, s = cfg.model, cfg.model.sampling
    out = []
    if m.weights not in WEIGHTS:
        out.append(f"model.weights={m.weights!r}: allowed values are {_allowed(WEIGHTS)}")
    if m.weights == "random" and not m.arch:
        out.append(f"model.weights=random needs model.arch (an architecture in conf/arch/); model {m.name!r} has none")
    if m.dtype not in DTYPES:
        out.append(f"model.dtype={m.dtype!r}: allowed values are {_allowed(DTYPES)}")
    if m.task not in TASKS:
        out.append(f"model.task={m.task!r}: allowed values are {_allowed(TASKS)}")
    if m.task in IMAGE_TASKS and not s.image_path:
        out.append(
            f"model.sampling.image_path=None: task {m.task!r} needs an input image (set model.sampling.image_path=PATH)"
        )
    for name in ("width", "height", "num_frames", "num_inference_steps", "fps"):
        value = getattr(s, name)
        if value is not None and value <= 0:
            out.append(f"model.sampling.{name}={value}: must be a positive integer")
    if s.resolution is not None and s.resolution not in RESOLUTION_PRESETS and (s.width is None or s.height is None):
        out.append(
            f"model.sampling.resolution={s.resolution!r}: the presets are {_allowed(RESOLUTION_PRESETS)} "
            "(SGLang's own; or set width and height)"
        )
    if s.guidance_scale is not None and s.guidance_scale < 0:
        out.append(f"model.sampling.guidance_scale={s.guidance_scale}: must be >= 0")
    if s.num_frames is not None and m.task not in VIDEO_TASKS and s.num_frames != 1:
        out.append(
            f"model.sampling.num_frames={s.num_frames}: only video tasks ({_allowed(VIDEO_TASKS)}) take frames, task is {m.task!r}"
        )
    # The same for every engine: SGLang runs the same VAEs and transformers.
    out += shape_problems(m)
    return out


def _check_parallel(cfg: Config) -> list[str]:
    """SGLang 0.5.23's own topology rules (ServerArgs._adjust_parallelism / _validate_parallelism):
    --cfg-parallel-size supersedes --enable-cfg-parallel (degree 2); the GPUs left per group after
    tp × cfg form the sequence-parallel degree, which must equal ulysses × ring when either is set."""
    p, out = cfg.parallel, []
    if p.num_gpus < 1:
        return [f"parallel.num_gpus={p.num_gpus}: must be >= 1"]
    for name in ("ulysses_degree", "ring_degree", "tp_degree", "cfg_parallel_size"):
        value = getattr(p, name)
        if value is not None and value < 1:
            out.append(f"parallel.{name}={value}: must be >= 1")
    if out:
        return out
    if p.cfg_parallel and p.cfg_parallel_size == 1:
        out.append(
            "parallel.cfg_parallel=true with parallel.cfg_parallel_size=1: the size supersedes the switch and "
            "turns CFG-parallel off; drop one of them"
        )
    cfg_degree = p.cfg_parallel_size if p.cfg_parallel_size is not None else (2 if p.cfg_parallel else 1)
    tp = p.tp_degree or 1
    group = tp * cfg_degree
    if cfg_degree > 1 and p.num_gpus == 1:
        out.append(f"parallel.num_gpus=1 with CFG-parallel (degree {cfg_degree}): CFG-parallel needs at least 2 GPUs")
    elif p.ulysses_degree is not None or p.ring_degree is not None:
        ulysses, ring = p.ulysses_degree or 1, p.ring_degree or 1
        if ulysses * ring * group != p.num_gpus:
            terms = f"ulysses_degree ({ulysses}) × ring_degree ({ring})"
            if cfg_degree > 1:
                terms += f" × {cfg_degree} (CFG-parallel)"
            if tp > 1:
                terms += f" × tp_degree ({tp})"
            out.append(
                f"parallel.num_gpus={p.num_gpus}: must equal {terms} = {ulysses * ring * group}; SGLang gives "
                "sequence parallelism the GPUs left after tp × CFG-parallel, and that degree must be ulysses × ring"
            )
    elif p.num_gpus % group:
        out.append(
            f"parallel.num_gpus={p.num_gpus}: must be divisible by tp_degree ({tp}) × CFG-parallel degree "
            f"({cfg_degree}) = {group}"
        )
    if cfg_degree > 1:
        g = cfg.model.sampling.guidance_scale
        if g is not None and g <= 1.0:
            out.append(
                f"parallel.cfg_parallel=true with model.sampling.guidance_scale={g}: CFG-parallel needs a model "
                "run with classifier-free guidance (guidance_scale > 1); use a sequence-parallel layout instead"
            )
    return out


def _check_offload(cfg: Config) -> list[str]:
    o, out = cfg.offload, []
    if o.prefetch_size is not None and o.prefetch_size < 0:
        out.append(
            f"offload.prefetch_size={o.prefetch_size}: must be >= 0 (0 = one layer, <1 = fraction of layers, >=1 = layer count)"
        )
    if o.prefetch_size is not None and o.dit_layerwise is False:
        out.append(
            f"offload.prefetch_size={o.prefetch_size} with offload.dit_layerwise=false: prefetch only applies to layerwise offload"
        )
    if o.dit_cpu and o.dit_layerwise:
        out.append("offload.dit_cpu=true with offload.dit_layerwise=true: choose one way to offload the DiT")
    return out


def _check_engine(cfg: Config) -> list[str]:
    e, out = cfg.engine, []
    if e.name not in ENGINES:
        return [f"engine.name={e.name!r}: allowed values are {_allowed(ENGINES)}"]
    if e.device not in DEVICES:
        out.append(f"engine.device={e.device!r}: allowed values are {_allowed(DEVICES)}")
    if e.timeout_s <= 0:
        out.append(f"engine.timeout_s={e.timeout_s}: must be > 0")
    if cfg.profile.mode not in PROFILE_MODES:
        out.append(f"profile.mode={cfg.profile.mode!r}: allowed values are {_allowed(PROFILE_MODES)}")
    if cfg.profile.num_steps == 0 or cfg.profile.num_steps < -1:
        out.append(f"profile.num_steps={cfg.profile.num_steps}: must be a positive step count or -1 for all steps")
    if cfg.kernels.impl not in KERNEL_IMPLS:
        out.append(f"kernels.impl={cfg.kernels.impl!r}: allowed values are {_allowed(KERNEL_IMPLS)}")
    elif cfg.kernels.gelu_epilogue and cfg.kernels.impl != "triton":
        out.append(
            f"kernels.gelu_epilogue=true with kernels.impl={cfg.kernels.impl!r}: the epilogue is part of the kernel "
            "swap; use kernels=triton (which turns it on)"
        )
    elif cfg.kernels.impl == "triton" and cfg.model.family not in TRITON_FAMILIES:
        out.append(
            f"kernels=triton with model.family={cfg.model.family!r}: kernels/ has no patch for it "
            f"({TRITON_UNPATCHED.get(cfg.model.family, 'its blocks are not the ops of kernels/')}); families with "
            f"one: {_allowed(TRITON_FAMILIES)}"
        )
    elif cfg.kernels.impl == "triton" and cfg.model.family in EPILOGUE_ONLY and not cfg.kernels.gelu_epilogue:
        out.append(
            f"kernels=triton kernels.gelu_epilogue=false with model.family={cfg.model.family!r}: the GELU epilogue is "
            "all kernels/ patches in this family, so nothing would be swapped in"
        )
    elif cfg.kernels.split_proj_out and cfg.kernels.impl != "triton":
        out.append(
            f"kernels.split_proj_out=true with kernels.impl={cfg.kernels.impl!r}: the split is part of the kernel "
            "swap; use kernels=triton (which turns it on)"
        )
    if cfg.compile.warmup_runs < 0:
        out.append(f"compile.warmup_runs={cfg.compile.warmup_runs}: must be >= 0")
    return out


def check_launch(cfg: Config) -> None:
    """Checks against this machine, run right before the engine starts (never at composition)."""
    problems: list[str] = []
    # SGLang on its CPU platform (engine.device=cpu) needs no GPU; otherwise it always runs on GPUs.
    uses_gpus = (
        (cfg.engine.name == "sglang" and cfg.engine.device != "cpu")
        or cfg.engine.device == "cuda"
        or (cfg.engine.device == "auto" and visible_gpu_count() > 0)
    )
    if uses_gpus and not cfg.engine.dry_run:
        visible = visible_gpu_count()
        if cfg.engine.gpus:
            visible = min(visible, len([g for g in cfg.engine.gpus.split(",") if g.strip()]))
        if cfg.parallel.num_gpus > visible:
            problems.append(
                f"parallel.num_gpus={cfg.parallel.num_gpus}: only {visible} GPU(s) visible on this machine"
                + (f" (engine.gpus={cfg.engine.gpus})" if cfg.engine.gpus else "")
            )
    if cfg.engine.device == "cuda" and visible_gpu_count() == 0:
        problems.append("engine.device=cuda: no CUDA device is visible (use engine.device=auto or cpu)")
    if cfg.profile.mode == "nsys" and not cfg.engine.dry_run and shutil.which("nsys") is None:
        problems.append("profile.mode=nsys: `nsys` is not on PATH (install NVIDIA Nsight Systems or use profile=torch)")
    image = cfg.model.sampling.image_path
    if image and not cfg.engine.dry_run and not Path(image).is_file():
        problems.append(f"model.sampling.image_path={image!r}: no such file")
    if problems:
        raise ConfigError(problems)
