"""Apply the run's offload, attention, kernel and compile choices to a loaded diffusers pipeline."""

from __future__ import annotations

import logging
import math

import torch

from diffexp.config.schema import Config, KernelsConfig, OffloadConfig
from diffexp.engines.diffusers.checks import ATTENTION_BACKENDS as DIFFUSERS_ATTENTION
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")


def denoisers(pipe) -> list[str]:
    """Names of the pipeline's DiT components (Wan2.2 A14B has two experts)."""
    return [n for n in ("transformer", "transformer_2") if getattr(pipe, n, None) is not None]


def blocks_per_group(prefetch_size: float | None, num_layers: int) -> int:
    """SGLang's prefetch-size semantics as diffusers group size: 0 → 1 layer, (0,1) → fraction, ≥1 → count."""
    if not prefetch_size:
        return 1
    if prefetch_size < 1:
        return max(1, math.ceil(prefetch_size * num_layers))
    return int(prefetch_size)


def _num_blocks(module: torch.nn.Module) -> int:
    return sum(len(m) for n, m in module.named_children() if isinstance(m, torch.nn.ModuleList))


def apply_offload(pipe, offload: OffloadConfig, device: torch.device) -> dict[str, str]:
    """Place components; returns a description of what was offloaded (logged as tags).

    DiT layerwise offload uses diffusers' group offloading with a prefetch stream; per-component CPU
    offload keeps the component on CPU and moves it to the device only while it runs (accelerate hooks).
    """
    wants = {
        "dit_layerwise": bool(offload.dit_layerwise),
        "dit_cpu": bool(offload.dit_cpu),
        "text_encoder_cpu": bool(offload.text_encoder_cpu),
        "vae_cpu": bool(offload.vae_cpu),
        "image_encoder_cpu": bool(offload.image_encoder_cpu),
    }
    if any(wants.values()) and device.type != "cuda":
        chosen = ", ".join(f"offload.{k}=true" for k, v in wants.items() if v)
        raise DiffexpError(f"{chosen}: offloading needs a CUDA device (this run is on {device}); use offload=none")
    placed: dict[str, str] = {}
    hooked: list[str] = []
    for name, component in pipe.components.items():
        if not isinstance(component, torch.nn.Module):
            continue
        if name in denoisers(pipe) and wants["dit_layerwise"]:
            group = blocks_per_group(offload.prefetch_size, _num_blocks(component))
            component.enable_group_offload(
                onload_device=device,
                offload_device=torch.device("cpu"),
                offload_type="block_level",
                num_blocks_per_group=group,
                use_stream=True,
                record_stream=True,
            )
            placed[name] = f"layerwise(blocks_per_group={group})"
        elif (
            (name in denoisers(pipe) and wants["dit_cpu"])
            or (name in TEXT_ENCODERS and wants["text_encoder_cpu"])
            or (name == "vae" and wants["vae_cpu"])
            or (name == "image_encoder" and wants["image_encoder_cpu"])
        ):
            hooked.append(name)
            placed[name] = "cpu_offload"
        else:
            component.to(device)
            placed[name] = str(device)
    if hooked:
        from accelerate import cpu_offload_with_hook

        previous = None
        # Chained in execution order: each hook moves the previous component back to CPU when its own runs.
        order = (getattr(pipe, "model_cpu_offload_seq", None) or "").split("->")
        for name in sorted(hooked, key=lambda n: order.index(n) if n in order else len(order)):
            _, previous = cpu_offload_with_hook(pipe.components[name], device, prev_module_hook=previous)
    return placed


def apply_attention(pipe, backend: str | None) -> None:
    if backend is None:
        return
    name = DIFFUSERS_ATTENTION[backend]
    for denoiser in denoisers(pipe):
        module = getattr(pipe, denoiser)
        if not hasattr(module, "set_attention_backend"):
            raise DiffexpError(
                f"attention.backend={backend!r}: {type(module).__name__} does not support attention backends in this diffusers version"
            )
        try:
            module.set_attention_backend(name)
        except Exception as exc:  # diffusers raises when the backend's package is missing
            raise DiffexpError(
                f"attention.backend={backend!r} (diffusers {name!r}) is not available here: {exc}"
            ) from exc
    log.info("attention backend: %s (diffusers %s)", backend, name)


def apply_kernels(pipe, options: KernelsConfig) -> list[str]:
    if options.impl == "torch":
        return []
    from kernels.patch import apply_triton_kernels

    patched: list[str] = []
    for denoiser in denoisers(pipe):
        patched += apply_triton_kernels(
            getattr(pipe, denoiser), gelu_epilogue=options.gelu_epilogue, split_proj_out=options.split_proj_out
        )
    log.info("triton kernels swapped in: %s", ", ".join(patched) or "none")
    return patched


def apply_compile(pipe, cfg: Config) -> None:
    if not cfg.compile.enabled:
        return
    for denoiser in denoisers(pipe):
        getattr(pipe, denoiser).compile(mode=cfg.compile.mode, fullgraph=cfg.compile.fullgraph)
    log.info("torch.compile on %s (mode=%s)", ", ".join(denoisers(pipe)), cfg.compile.mode)
