"""Typed structured configs for every Hydra config group; the shape of a valid run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

# Resolution presets, as (width, height): the shortcuts SGLang 0.5.23's SamplingParams.get_cli_args knows
# (`--720p` …). One table for both engines: the in-process engine resolves the same names to the same sizes.
RESOLUTION_PRESETS = {"720p": (1280, 720), "1080p": (1920, 1080), "2k": (2560, 1440), "4k": (3840, 2160)}


@dataclass
class SamplingConfig:
    """What is generated: everything that must match for two runs' outputs to be comparable."""

    prompt: str = "A futuristic cyberpunk city at night, neon lights reflecting on wet streets, highly detailed, 8k"
    negative_prompt: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    # A resolution preset (RESOLUTION_PRESETS, e.g. "720p"); width/height win when both are set.
    resolution: Optional[str] = None
    num_frames: Optional[int] = None
    fps: Optional[int] = None
    num_inference_steps: Optional[int] = None
    guidance_scale: Optional[float] = None
    # None: the engine default (the in-process engine then uses 42).
    seed: Optional[int] = 42
    image_path: Optional[str] = None


@dataclass
class ModelConfig:
    name: str = MISSING
    # Hugging Face repo id or local directory of a diffusers-format checkpoint.
    path: str = MISSING
    family: str = MISSING  # flux | flux2 | qwen_image | zimage | wan | ltx2 | hunyuan3d | ...
    task: str = MISSING  # t2i | t2i_turbo | image_edit | t2v | ti2v | i2v | shape
    # diffusers pipeline class used by the in-process engine.
    pipeline: Optional[str] = None
    # SGLang --pipeline-class-name, when the recipe pins one.
    sglang_pipeline: Optional[str] = None
    # Options SGLang reads from a --config file (e.g. Hunyuan3D's paint_enable); the SGLang engine
    # writes them to <run_dir>/sglang_config.json and passes that file.
    sglang_config: dict[str, Any] = field(default_factory=dict)
    # SGLang --model-id: the registry name that selects the native pipeline config when `path` is a
    # local directory SGLang cannot identify (e.g. "FLUX.1-dev" for the built-in tiny FLUX).
    sglang_model_id: Optional[str] = None
    # pretrained: load the checkpoint at `path`; random: real architecture, seeded random weights;
    # tiny: the built-in small model, built locally and cached.
    weights: str = "pretrained"
    # Architecture config (conf/arch/<name>.yaml) used when weights=random.
    arch: Optional[str] = None
    dtype: str = "bfloat16"
    # Gated Hugging Face repos need HF_TOKEN.
    gated: bool = False
    # Short label for reports (e.g. "FLUX.1-dev") and the guide's task label (e.g. "T2I").
    label: Optional[str] = None
    task_label: Optional[str] = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    # Extra keyword arguments for the diffusers pipeline call (in-process engine only),
    # e.g. max_sequence_length for the tiny models.
    call_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParallelConfig:
    name: str = "single"
    num_gpus: int = 1
    # None: leave the degree to the engine's default (SGLang derives it from num_gpus).
    ulysses_degree: Optional[int] = None
    ring_degree: Optional[int] = None
    cfg_parallel: bool = False
    # SGLang's --cfg-parallel-size spelling (LTX-2.3 recipe); implies cfg_parallel.
    cfg_parallel_size: Optional[int] = None
    tp_degree: Optional[int] = None


@dataclass
class OffloadConfig:
    """Tri-state fields: None leaves the engine's default, so recipes can omit a flag."""

    name: str = "none"
    dit_cpu: Optional[bool] = None
    dit_layerwise: Optional[bool] = None
    # 0.0 = one layer ahead, (0, 1) = fraction of layers, >= 1 = absolute layer count.
    prefetch_size: Optional[float] = None
    text_encoder_cpu: Optional[bool] = None
    image_encoder_cpu: Optional[bool] = None
    vae_cpu: Optional[bool] = None
    pin_cpu_memory: Optional[bool] = None


@dataclass
class AttentionConfig:
    # None: the engine's default backend.
    backend: Optional[str] = None
    # Lossy backends change the output by design: the correctness review applies its looser bounds.
    lossy: bool = False


@dataclass
class CompileConfig:
    enabled: bool = False
    warmup: bool = False
    # Untimed full generations before the measured one (in-process engine).
    warmup_runs: int = 1
    # Denoise steps in each warmup generation; None = as many as the measured run. Compiled graphs
    # depend on shapes, not on the step count, so a short warmup compiles the same graphs, provided it calls
    # every expert the measured run calls (Wan2.2's two DiTs): raised to the fewest steps that do.
    warmup_steps: Optional[int] = None
    mode: Optional[str] = None  # torch.compile mode, e.g. "max-autotune-no-cudagraphs"
    fullgraph: bool = False


@dataclass
class ProfileConfig:
    # off | torch | nsys
    mode: str = "off"
    # Denoise steps profiled; -1 for all.
    num_steps: int = 5
    all_stages: bool = False
    # nsys: seconds to skip at start (the warmup) and the capture length; None = whole run.
    nsys_delay_s: Optional[float] = None
    nsys_duration_s: Optional[float] = None
    # Wall time of the same command without profiling, for CPU (non-GPU) time; None uses nsys's own span.
    unprofiled_elapsed_s: Optional[float] = None
    # Category map for GPU-time breakdown; None uses the built-in map from the guide.
    categories: Optional[str] = None


@dataclass
class EngineConfig:
    name: str = "diffusers"  # diffusers | sglang
    dry_run: bool = False
    # SGLang --backend: sglang (native) or diffusers (explicit diffusers-backend baseline).
    backend: Optional[str] = None
    # auto | cpu | cuda  (in-process engine)
    device: str = "auto"
    # Comma-separated CUDA device ids; None picks the idle ones.
    gpus: Optional[str] = None
    # In-process engine: cap the CUDA caching allocator at this many GiB per process
    # (torch.cuda.set_per_process_memory_fraction), so a run over a VRAM budget fails with an OOM instead of
    # using memory the budget does not have. None: no cap.
    vram_cap_gib: Optional[float] = None
    timeout_s: float = 3600.0
    hf_offline: bool = False
    dit_precision: Optional[str] = None
    vae_precision: Optional[str] = None
    log_level: Optional[str] = None
    # Extra engine flags appended verbatim (SGLang) — an escape hatch for flags diffexp does not model.
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # The command to launch SGLang's CLI.
    executable: str = "sglang"
    # Path to a JSON config file passed as --config (e.g. Hunyuan3D shape).
    config_file: Optional[str] = None
    # SGLang --save-output (true) / --no-save-output (false) / neither (null; SGLang saves by default).
    save_output: Optional[bool] = True
    # SGLang --performance-mode: manual keeps placement as the config states it (no auto-tuning, no CFG-parallel
    # SGLang enables on its own); auto / speed / memory let SGLang choose (tagged an auto-tuned baseline);
    # null passes nothing (SGLang's default, auto).
    performance_mode: Optional[str] = "manual"
    # SGLANG_DIFFUSION_SYNC_STAGE_PROFILING=1: SGLang synchronises the device at every stage and step boundary,
    # so its stage and step times are device time, not launch time (docs/sglang.md says what it costs).
    sync_stage_profiling: bool = True
    # Launch refuses a run whose weights (counted from conf/arch/) cannot fit this machine's memory; true skips it.
    skip_resource_check: bool = False


@dataclass
class TrackingConfig:
    # None: a local SQLite store under ./mlruns (no server needed).
    uri: Optional[str] = None
    # None: derived from the model name.
    experiment: Optional[str] = None
    run_name: Optional[str] = None
    tags: dict[str, str] = field(default_factory=dict)
    enabled: bool = True


@dataclass
class KernelsConfig:
    # torch: the model's own modules; triton: kernels/ swapped into the transformer.
    impl: str = "torch"
    # With impl=triton: also run each MLP up-projection + tanh GELU as one cuBLASLt call (its GELU epilogue,
    # kernels/linear_gelu.py). kernels=triton turns it on (it gained 2.1 % a FLUX step on an H200);
    # kernels=triton kernels.gelu_epilogue=false leaves it out.
    gelu_epilogue: bool = False
    # With impl=triton: FLUX's single-block proj_out as one GEMM per part of its concatenated input, so the cat is
    # never written (kernels/linear_of_concat.py). kernels=triton turns it on (1.87 ms a FLUX step on an H200);
    # FLUX only, other families have no such cat.
    split_proj_out: bool = False


@dataclass
class ReviewConfig:
    # MLflow run id, "latest:<model>", "sweep[:first|:baseline]", a path to reference images/videos, or "off".
    # None: the sweep's reference inside a sweep, no review outside one (see diffexp/review/reference.py).
    reference: Optional[str] = None
    # Lossless changes must reach these bounds.
    min_psnr_db: float = 40.0
    min_ssim: float = 0.98
    # Declared-lossy changes (sage attention, Cache-DiT, fp8) are judged against these instead.
    lossy_min_psnr_db: float = 25.0
    lossy_min_ssim: float = 0.80
    # Lossy runs are only reported, never failed, when this is false.
    judge_lossy: bool = True
    # Declares this run's change lossy (Cache-DiT, fp8, ...) so the looser bounds apply; attention.lossy
    # and fp8/fp4 engine precisions count as lossy without it.
    lossy: bool = False
    # Marks this sweep point as the reference for the others (with review.reference=sweep:baseline).
    baseline: bool = False


@dataclass
class MeasureConfig:
    """How a run's figures are measured: repeated trials, fresh-process replicates, steady state, GPU state
    (docs/measurement.md)."""

    # Measured generations in one process after the warmup; the headline figures are their median.
    # None: 5 on a GPU, 1 on CPU (a single shot is tagged noise=unknown). Always 1 under profile=torch.
    repeats: Optional[int] = None
    # Fresh processes of the same config, aggregated into one run (between-process spread beside the
    # within-process one). SGLang runs one request per process, so its repeats are replicates.
    replicates: int = 1
    # Set by the replicate parent for its children (sub-directory replicates/<i>, tag measure.replicate_index).
    replicate_index: Optional[int] = None
    # Keep warming up (in-process engine) until two consecutive warmup generations' median step times differ
    # by at most warmup_tolerance, up to max_warmup_runs; the run is tagged warmup.settled=true|false.
    warmup_until_stable: bool = False
    warmup_tolerance: float = 0.02
    max_warmup_runs: int = 10
    # NVML sampling of the run's GPUs during the measured window (skipped where pynvml or a driver is absent).
    gpu_sampling: bool = True
    gpu_sample_hz: float = 20.0
    # Bootstrap seed for every interval of this run (same figures, same interval).
    seed: int = 0
    # After the measurement, the compute floor of one denoise step of this config, counted and timed on the run's
    # own device (docs/floor.md): floor.* metrics (efficiency = floor ÷ the run's median step) and floor/ files.
    # In-process engine only.
    floor: bool = False


@dataclass
class Config:
    model: ModelConfig = MISSING
    parallel: ParallelConfig = MISSING
    offload: OffloadConfig = MISSING
    attention: AttentionConfig = MISSING
    compile: CompileConfig = MISSING
    profile: ProfileConfig = MISSING
    engine: EngineConfig = MISSING
    tracking: TrackingConfig = MISSING
    kernels: KernelsConfig = field(default_factory=KernelsConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    # Where this run's files go; Hydra's run dir by default.
    output_dir: str = "."
    # Name of the sweep this run belongs to (set by multirun sweeps).
    sweep: Optional[str] = None
    # The guide recipe this run composed (`+recipe=NAME` sets it), so the suite report can say where a run departed
    # from it (fewer steps, one GPU) also outside a sweep.
    recipe: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)
