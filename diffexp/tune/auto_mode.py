"""The placement SGLang 0.5.23's `--performance-mode auto` chooses, as a pure function of memory and model sizes.

Read from `runtime/server_args/auto_tune.py` (ServerArgsAutoTuner) and the `_adjust_offload` step of
`ServerArgs._adjust_parameters` it runs between, in that order, for a CUDA platform and no explicit placement:

1. `_adjust_offload`: a device under 30 GiB total → DiT, text-encoder and image-encoder CPU offload; else an image
   model → DiT and text-encoder CPU offload; else (video) → all three.
2. `maybe_adjust_auto_default_layerwise_offload`: layerwise offload for text encoder, image encoder and VAE, minus
   everything when the least-free GPU holds all weights twice over (AUTO_ALL_RESIDENT_WEIGHT_MULTIPLE), minus the
   model's keep_resident_components (default: the VAE) when free memory reaches keep_resident_min_available_gb
   (the model's, else 45 GiB for images, 120 GiB for video); the DiT is added in front (with the model's prefetch
   size) when the model lists "auto" in dit_layerwise_offload_modes, or lists "memory" and the DiT needs more
   than AUTO_DIT_MAX_DEVICE_FRACTION (0.8) of free memory below that threshold.
3. `maybe_adjust_auto_fsdp_with_offload_enabled`: on 2+ GPUs with DiT offload and a model that declares
   fsdp_auto_min_available_memory_gb (and uses CFG when it requires it) and that much free: FSDP replaces the DiT
   offload, and CFG-parallel is enabled.
4. `maybe_adjust_auto_component_residency_after_offload`: all resident, or free ≥ the threshold → the
   keep-resident components (all of them, or the model's, plus the DiT for an image model) lose their offloads.
5. `maybe_replace_cpu_offloaded_components_with_layerwise`: without FSDP and with no layerwise selection yet,
   CPU-offloaded encoders and VAE become layerwise.
6. `finalize_auto_flags`: whatever is still unset is off.

The thresholds are the source's own ("Picked, not measured"); the tuner runs this placement as an anchor trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

AUTO_DIT_MAX_DEVICE_FRACTION = 0.8
AUTO_ALL_RESIDENT_WEIGHT_MULTIPLE = 2
IMAGE_GEN_KEEP_RESIDENT_MIN_AVAILABLE_GB = 45.0
DEFAULT_KEEP_RESIDENT_MIN_AVAILABLE_GB = 120.0
LOW_MEMORY_DEVICE_GB = 30.0
DIT, TEXT_ENCODER, IMAGE_ENCODER, VAE = "dit", "text_encoder", "image_encoder", "vae"


@dataclass(frozen=True)
class Deployment:
    """A model's ModelDeploymentConfig fields the auto mode reads (defaults: the base PipelineConfig's, which
    FLUX.1-dev uses)."""

    dit_layerwise_offload_modes: tuple[str, ...] = ()
    auto_dit_offload_prefetch_size: Optional[float] = None
    keep_resident_min_available_gb: Optional[float] = None
    keep_resident_components: tuple[str, ...] = (VAE,)
    fsdp_auto_min_available_memory_gb: Optional[float] = None
    fsdp_auto_requires_cfg: bool = True
    auto_enable_cfg_parallel: bool = True


# Wan's (configs/pipeline_configs/wan.py, the T2V config); FLUX.1-dev keeps the base defaults.
DEPLOYMENTS = {
    "flux": Deployment(),
    "wan": Deployment(
        dit_layerwise_offload_modes=("memory",), keep_resident_min_available_gb=60, keep_resident_components=(DIT,)
    ),
}


@dataclass(frozen=True)
class Situation:
    free_gib: float  # free memory on the least-free selected GPU (the tuner: the VRAM budget)
    total_gib: float  # the device's total memory
    image: bool  # an image model (else video)
    dit_gib: float  # the DiT's weights in its precision
    weights_gib: float  # every component's weights
    num_gpus: int = 1
    uses_cfg: bool = False
    deployment: Deployment = field(default_factory=Deployment)


@dataclass
class Placement:
    dit_cpu_offload: Optional[bool] = None
    text_encoder_cpu_offload: Optional[bool] = None
    image_encoder_cpu_offload: Optional[bool] = None
    vae_cpu_offload: Optional[bool] = None
    layerwise_offload_components: Optional[list[str]] = None
    dit_offload_prefetch_size: Optional[float] = None
    use_fsdp_inference: Optional[bool] = None
    enable_cfg_parallel: Optional[bool] = None
    notes: list[str] = field(default_factory=list)


def _threshold(s: Situation) -> float:
    explicit = s.deployment.keep_resident_min_available_gb
    if explicit is not None:
        return explicit
    return IMAGE_GEN_KEEP_RESIDENT_MIN_AVAILABLE_GB if s.image else DEFAULT_KEEP_RESIDENT_MIN_AVAILABLE_GB


def _all_resident(s: Situation) -> bool:
    return s.free_gib >= AUTO_ALL_RESIDENT_WEIGHT_MULTIPLE * s.weights_gib


def _dit_layerwise(s: Situation) -> bool:
    d = s.deployment
    if _all_resident(s):
        return False
    if "auto" in d.dit_layerwise_offload_modes:
        return True
    if "memory" not in d.dit_layerwise_offload_modes or s.free_gib >= _threshold(s):
        return False
    return s.dit_gib > s.free_gib * AUTO_DIT_MAX_DEVICE_FRACTION


def _fsdp_ok(s: Situation) -> bool:
    d = s.deployment
    if d.fsdp_auto_min_available_memory_gb is None or (d.fsdp_auto_requires_cfg and not s.uses_cfg):
        return False
    return s.free_gib >= d.fsdp_auto_min_available_memory_gb


def auto_placement(s: Situation) -> Placement:
    """What `--performance-mode auto` sets when no placement flag is given (the module docstring's steps)."""
    p = Placement()
    # 1. _adjust_offload
    if s.total_gib < LOW_MEMORY_DEVICE_GB:
        p.dit_cpu_offload = p.text_encoder_cpu_offload = p.image_encoder_cpu_offload = True
        p.notes.append(f"device under {LOW_MEMORY_DEVICE_GB:g} GiB: DiT and encoders CPU-offloaded")
    elif s.image:
        p.dit_cpu_offload, p.text_encoder_cpu_offload, p.image_encoder_cpu_offload = True, True, False
    else:
        p.dit_cpu_offload = p.text_encoder_cpu_offload = p.image_encoder_cpu_offload = True
    # 2. default layerwise offload
    threshold = _threshold(s)
    if _all_resident(s):
        components: list[str] = []
        p.notes.append(f"{s.free_gib:g} GiB free holds the {s.weights_gib:.1f} GiB of weights twice: all resident")
    else:
        components = [TEXT_ENCODER, IMAGE_ENCODER, VAE]
        if s.free_gib >= threshold:
            components = [c for c in components if c not in s.deployment.keep_resident_components]
    if _dit_layerwise(s):
        components.insert(0, DIT)
        p.dit_offload_prefetch_size = s.deployment.auto_dit_offload_prefetch_size
        p.notes.append(f"DiT {s.dit_gib:.1f} GiB > {AUTO_DIT_MAX_DEVICE_FRACTION:g} × {s.free_gib:g} GiB: layerwise")
    if components:
        p.layerwise_offload_components = components
    # 3. FSDP replaces DiT offload on several GPUs
    dit_offloaded = bool(
        p.dit_cpu_offload or (p.layerwise_offload_components and DIT in p.layerwise_offload_components)
    )
    if s.num_gpus >= 2 and dit_offloaded and _fsdp_ok(s):
        p.use_fsdp_inference, p.dit_cpu_offload = True, False
        if p.layerwise_offload_components:
            p.layerwise_offload_components = [c for c in p.layerwise_offload_components if c != DIT] or None
        if s.deployment.auto_enable_cfg_parallel and s.uses_cfg:
            p.enable_cfg_parallel = True
    # 4. residency after offload
    if _all_resident(s) or s.free_gib >= threshold:
        resident = (
            {DIT, TEXT_ENCODER, IMAGE_ENCODER, VAE} if _all_resident(s) else set(s.deployment.keep_resident_components)
        )
        if s.image:
            resident.add(DIT)
        if p.layerwise_offload_components is not None:
            p.layerwise_offload_components = [c for c in p.layerwise_offload_components if c not in resident] or None
        if p.dit_cpu_offload and DIT in resident:
            p.dit_cpu_offload = False
        if p.text_encoder_cpu_offload and TEXT_ENCODER in resident:
            p.text_encoder_cpu_offload = False
        if p.image_encoder_cpu_offload and IMAGE_ENCODER in resident:
            p.image_encoder_cpu_offload = False
        if p.vae_cpu_offload and VAE in resident:
            p.vae_cpu_offload = False
    # 5. CPU offload becomes layerwise
    if not p.use_fsdp_inference and p.layerwise_offload_components is None:
        replaced = [
            name
            for name, on in (
                (TEXT_ENCODER, p.text_encoder_cpu_offload),
                (IMAGE_ENCODER, p.image_encoder_cpu_offload),
                (VAE, p.vae_cpu_offload),
            )
            if on
        ]
        if replaced:
            p.layerwise_offload_components = replaced
    # 6. finalize
    for name in ("dit_cpu_offload", "text_encoder_cpu_offload", "image_encoder_cpu_offload", "use_fsdp_inference"):
        if getattr(p, name) is None:
            setattr(p, name, False)
    return p


def as_overrides(p: Placement) -> tuple[list[str], list[str]]:
    """The placement in diffexp's offload fields for the in-process engine, and what it cannot express there.
    Layerwise offload of an encoder or the VAE is, in-process, its CPU offload (moved to the GPU while it runs)."""
    layerwise = set(p.layerwise_offload_components or ())
    out = ["offload=none"]
    unexpressed = []
    if DIT in layerwise:
        out += ["offload.dit_layerwise=true"]
        if p.dit_offload_prefetch_size is not None:
            out.append(f"offload.prefetch_size={p.dit_offload_prefetch_size}")
    elif p.dit_cpu_offload:
        out.append("offload.dit_cpu=true")
    if p.text_encoder_cpu_offload or TEXT_ENCODER in layerwise:
        out.append("offload.text_encoder_cpu=true")
    if p.vae_cpu_offload or VAE in layerwise:
        out.append("offload.vae_cpu=true")
    if p.use_fsdp_inference:
        unexpressed.append("use_fsdp_inference=true (the in-process engine has no FSDP)")
    if p.enable_cfg_parallel:
        unexpressed.append("enable_cfg_parallel=true")
    return out, unexpressed
