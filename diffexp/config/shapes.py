"""Output sizes a model can really produce: width/height on its spatial grid, frame counts on its temporal one.

The pipelines round anything else down with a warning (diffusers' FluxPipeline, WanPipeline, …), so the run
would log the requested size beside an output of another: refused here instead, naming the sizes allowed.
The grid comes from the model's architecture file (conf/arch/, the VAE's scale factors and the transformer's
patch size) when it has one, else from the family's published values below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from diffexp.config.arch import arch_spec
from diffexp.config.schema import ModelConfig


@dataclass(frozen=True)
class Grid:
    """Pixels per latent cell (VAE spatial factor × transformer patch) and frames per latent frame."""

    vae: int
    patch: int
    temporal: Optional[int] = None  # video VAEs: frame counts are temporal·k + 1

    @property
    def spatial(self) -> int:
        return self.vae * self.patch


# Families whose pipelines pack 2×2 latent cells into one token themselves, whatever the transformer's
# patch_size says (FluxPipeline._pack_latents and its descendants; the check is `% (vae_scale_factor * 2)`).
PACKED_FAMILIES = ("flux", "flux2", "qwen_image", "zimage")
# The families' published checkpoints (diffusers 0.42 pipeline defaults, for a model without conf/arch/).
FAMILY_GRIDS = {
    "flux": Grid(8, 2),
    "flux2": Grid(8, 2),
    "qwen_image": Grid(8, 2),
    "zimage": Grid(8, 2),
    "wan": Grid(8, 2, temporal=4),
    "ltx2": Grid(32, 1, temporal=8),
}


def _vae_factors(vae: dict[str, Any]) -> tuple[Optional[int], Optional[int]]:
    """(spatial, temporal) scale factors of the VAE spec, as the pipelines compute them."""
    cls, cfg = vae.get("class", "").rsplit(".", 1)[-1], vae.get("config", {})
    if cls in ("AutoencoderKL", "AutoencoderKLFlux2"):
        return 2 ** (len(cfg.get("block_out_channels", [0] * 4)) - 1), None
    if cls == "AutoencoderKLWan":
        return cfg.get("scale_factor_spatial", 8), cfg.get("scale_factor_temporal", 4)
    if cls == "AutoencoderKLQwenImage":
        return 2 ** len(cfg.get("temperal_downsample", [False, True, True])), None
    return None, None


def _patch(family: str, transformer: dict[str, Any]) -> Optional[int]:
    if family in PACKED_FAMILIES:
        return 2
    patch = transformer.get("config", {}).get("patch_size")
    if isinstance(patch, list):  # (t, h, w)
        return patch[-1]
    return patch


def grid_for(model: ModelConfig) -> Optional[Grid]:
    """The model's grid, or None for a family with no known rule (nothing is checked then)."""
    family = FAMILY_GRIDS.get(model.family)
    arch = arch_spec(model.arch) if model.arch else None
    if family is None or arch is None:
        return family
    components = arch.get("components", {})
    vae, temporal = _vae_factors(components.get("vae", {}))
    patch = _patch(model.family, components.get("transformer", {}))
    if model.family == "ltx2":  # the transformer states its VAE's factors (frames, height, width)
        factors = components.get("transformer", {}).get("config", {}).get("vae_scale_factors")
        if factors:
            temporal, vae = factors[0], factors[-1]
    return Grid(
        vae=vae or family.vae,
        patch=patch or family.patch,
        temporal=(temporal or family.temporal) if family.temporal else None,
    )


def _nearest(value: int, step: int, offset: int = 0) -> str:
    below = (value - offset) // step * step + offset
    return f"{below} or {below + step}" if below >= max(offset, 1) else f"{below + step}"


def shape_problems(model: ModelConfig) -> list[str]:
    grid, s = grid_for(model), model.sampling
    if grid is None:
        return []
    out = []
    basis = f"family {model.family} (VAE ×{grid.vae} · patch {grid.patch})"
    for name in ("width", "height"):
        value = getattr(s, name)
        if value is not None and value > 0 and value % grid.spatial:
            out.append(
                f"model.sampling.{name}={value}: must be a multiple of {grid.spatial} for {basis}; "
                f"nearest: {_nearest(value, grid.spatial)}"
            )
    frames = s.num_frames
    if grid.temporal and frames is not None and frames > 0 and frames % grid.temporal != 1:
        out.append(
            f"model.sampling.num_frames={frames}: must be {grid.temporal}k+1 for family {model.family} "
            f"(temporal VAE ×{grid.temporal}); nearest: {_nearest(frames, grid.temporal, 1)}"
        )
    return out
