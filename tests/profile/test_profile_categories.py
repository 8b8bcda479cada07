"""The category map: the guide's order and first-match-wins, extensions, and validation messages."""

from __future__ import annotations

import pytest

from diffexp.errors import DiffexpError
from diffexp.profile.categories import DEFAULT_CATEGORIES_PATH, load_categories, parse_categories

GUIDE_ORDER = [
    "gemm",
    "attn",
    "adaln_modulation",
    "norm",
    "rope",
    "activation",
    "nccl_comm",
    "triton_kernel",
    "memcpy",
    "misc",
]


def test_default_map_keeps_the_guide_categories_in_order():
    names = load_categories().names
    assert [n for n in names if n in GUIDE_ORDER] == GUIDE_ORDER
    assert names[-1] == "misc"
    assert load_categories("guide").rules == load_categories(DEFAULT_CATEGORIES_PATH).rules


@pytest.mark.parametrize(
    ("kernel", "trace_category", "expected"),
    [
        ("nvjet_sm90_tst_192x192_64x4_2x1_v_bz_coopB_bias_TNN", "kernel", "gemm"),
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "kernel", "gemm"),
        ("void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8>", "kernel", "gemm"),
        ("void cublasLt::splitKreduce_kernel<32, 16, int, float>", "kernel", "gemm"),
        # FlashAttention-3 and xformers say "cutlass" too; first match wins, so gemm must not take them.
        ("void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<...>>>", "kernel", "attn"),
        ("fmha_cutlassF_bf16_aligned_64x64_rf_sm80", "kernel", "attn"),
        ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7", "kernel", "attn"),
        ("fuse_scale_shift_kernel", "kernel", "adaln_modulation"),
        ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16>", "kernel", "norm"),
        ("fused_add_rmsnorm_kernel", "kernel", "norm"),
        ("triton_red_fused_native_layer_norm_0", "kernel", "norm"),  # the guide's order: norm before triton
        ("apply_rotary_embedding_kernel", "kernel", "rope"),
        (
            "void at::native::vectorized_elementwise_kernel<8, at::native::GeluCUDAKernelImpl(...)>",
            "kernel",
            "activation",
        ),
        ("silu_and_mul_kernel", "kernel", "activation"),
        ("ncclDevKernel_AllGather_RING_LL", "kernel", "nccl_comm"),
        ("triton_poi_fused_add_mul_0", "kernel", "triton_kernel"),
        ("Memcpy HtoD (Pageable -> Device)", "gpu_memcpy", "memcpy"),
        ("Memset (Device)", "gpu_memset", "memcpy"),
        ("an oddly named copy", "gpu_memcpy", "memcpy"),  # the trace category alone decides
        (
            "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl_nocast<...>>",
            "kernel",
            "elementwise",
        ),
        ("void at::native::reduce_kernel<512, 1>", "kernel", "elementwise"),
        ("some_custom_kernel", "kernel", "misc"),
    ],
)
def test_default_map_classifies(kernel, trace_category, expected):
    assert load_categories().classify(kernel, trace_category) == expected


def test_first_matching_rule_wins_and_unmatched_is_misc():
    rules = parse_categories(
        {"name": "mine", "rules": [{"category": "a", "pattern": "x"}, {"category": "b", "pattern": "x|y"}]}
    )
    assert [rules.classify(n) for n in ("x", "xy", "y", "z")] == ["a", "a", "b", "misc"]
    assert rules.names == ("a", "b", "misc")


def test_invalid_maps_name_the_field_and_what_is_allowed(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n"
        "  - {category: gemm, pattern: 'gemm(' }\n"
        "  - {pattern: flash}\n"
        "  - {category: x, regex: y}\n"
        "  - just a string\n"
    )
    with pytest.raises(DiffexpError) as caught:
        load_categories(bad)
    message = str(caught.value)
    assert "rules[0].pattern = 'gemm(': not a valid regular expression" in message
    assert "rules[1].category = None: expected a non-empty string" in message
    assert "rules[2]: unknown key(s) ['regex']; allowed: ['category', 'pattern', 'trace_categories']" in message
    assert "rules[3] = 'just a string'" in message
    (tmp_path / "empty.yaml").write_text("name: nothing\n")
    with pytest.raises(DiffexpError, match="non-empty `rules:` list"):
        load_categories(tmp_path / "empty.yaml")
    with pytest.raises(DiffexpError, match=r"does not exist; pass a YAML path or one of \['guide'"):
        load_categories("no_such_map")
