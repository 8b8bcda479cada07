"""Every full-size architecture builds on the meta device and has its published parameter count.

Meta construction allocates nothing, so a 32 B DiT is counted in well under a second; each size is
compared at the precision it is published (model cards / papers of the model repos).
"""

from __future__ import annotations

import pytest
import torch

from diffexp.models.arch import build_empty_model, load_arch
from diffexp.models.materialize import parameter_count

# (arch, components counted together, published size in billions, decimals it is published to)
PUBLISHED = [
    ("flux1_dev", ["transformer"], 11.9, 1),  # FLUX.1-dev: "12 B", 11.9 B exactly in the diffusers docs
    ("flux1_dev", ["text_encoder_2"], 4.76, 2),  # T5-XXL encoder: 9.52 GB in bf16 (text_encoder_2/*.safetensors)
    ("qwen_image", ["transformer"], 20, 0),  # Qwen-Image: "20B MMDiT"
    ("qwen_image", ["text_encoder"], 8.3, 1),  # Qwen2.5-VL-7B-Instruct: 8.29 B on its model page
    ("qwen_image_edit", ["transformer"], 20, 0),
    ("flux2_dev", ["transformer"], 32, 0),  # FLUX.2-dev: "32 billion parameter"
    ("flux2_dev", ["text_encoder"], 24, 0),  # Mistral-Small-3.2-24B
    ("zimage_turbo", ["transformer"], 6, 0),  # Z-Image: "6B"
    ("zimage_turbo", ["text_encoder"], 4, 0),  # Qwen3-4B
    ("wan22_t2v", ["transformer"], 14, 0),  # Wan2.2 A14B: two 14 B experts
    ("wan22_t2v", ["transformer_2"], 14, 0),
    ("wan22_t2v", ["text_encoder"], 5.7, 1),  # UMT5-XXL encoder
    ("wan22_ti2v", ["transformer"], 5, 0),  # Wan2.2-TI2V-5B
    ("ltx2", ["transformer"], 19, 0),  # LTX-2: "19B" (audio-video DiT)
    ("ltx2", ["text_encoder"], 12, 0),  # Gemma 3 12B
    # LTX-2.3: "22B"; diffusers moved its caption projections out of the DiT into the connectors.
    ("ltx23", ["transformer", "connectors"], 22, 0),
    ("joyai_edit", ["text_encoder"], 8.8, 1),  # Qwen3-VL-8B-Instruct: 8.77 B on its model page
]


@pytest.mark.parametrize(("arch", "names", "billions", "decimals"), PUBLISHED, ids=lambda v: str(v))
def test_parameter_count_matches_the_published_size(arch, names, billions, decimals):
    spec = load_arch(arch)["components"]
    total = 0
    for name in names:
        model = build_empty_model(spec[name], torch.bfloat16)
        assert all(p.device.type == "meta" for p in model.parameters()), name
        total += parameter_count(model)
    assert round(total / 1e9, decimals) == billions, f"{arch} {names}: {total / 1e9:.3f} B"


def test_wan22_t2v_has_two_identical_experts_and_the_boundary():
    arch = load_arch("wan22_t2v")
    assert arch["components"]["transformer"] == arch["components"]["transformer_2"]
    assert arch["pipeline_kwargs"] == {"boundary_ratio": 0.875}


def test_every_standard_model_points_at_an_arch_that_exists():
    import yaml

    from diffexp.config.store import CONF_DIR

    pointed = {}
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        model = yaml.safe_load(path.read_text())
        if model.get("arch"):
            pointed[path.stem] = model["arch"]
            load_arch(model["arch"])
    for name in ("qwen_image", "qwen_image_edit", "flux1_dev", "flux2_dev", "zimage_turbo", "wan22_t2v"):
        assert pointed.get(name) == name
    assert pointed["firered_edit"] == "qwen_image_edit"
