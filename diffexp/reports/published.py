"""SGLang's published figures for suite models on one H200, shown beside the suite table's rows so a reader sees how
the in-process engine (random weights, diffusers) stands against SGLang on the same model. Only figures with their
conditions are kept; a model without one shows '-'."""

from __future__ import annotations

from dataclasses import dataclass

# The figures are charts in the SGLang team's cross-framework benchmark posts (LMSYS blog, 2025-11-07 and
# 2026-01-16); the values are those the suite issue quotes from them, not re-read from the charts here.
SOURCE = "SGLang team, cross-framework benchmark reports (LMSYS blog, 2025-11-07 / 2026-01-16)"


@dataclass(frozen=True)
class Published:
    model: str  # conf/model/<model>.yaml
    e2e_s: float  # end to end, measured by the client
    conditions: str


SGLANG_H200 = {
    p.model: p
    for p in (
        Published("flux1_dev", 7.69, "FLUX.1-dev, 1024², 50 steps, 1×H200, SGLang's default profile, client-side"),
        Published("qwen_image", 6.77, "Qwen-Image-2512, 1×H200, client-side"),
        Published("zimage_turbo", 1.35, "Z-Image-Turbo, 9 steps, 1×H200, client-side"),
    )
}
COLUMN = "SGLang H200 (published)"


def cell(model: str, marks: dict[str, int]) -> str:
    """The figure with its footnote's number (numbered in the order models are first shown)."""
    found = SGLANG_H200.get(model)
    if found is None:
        return "-"
    marks.setdefault(model, len(marks) + 1)
    return f"{found.e2e_s:.2f} s [{marks[model]}]"


def footnotes(marks: dict[str, int]) -> list[str]:
    return [
        f"[{n}] SGLang, published: {SGLANG_H200[m].e2e_s:.2f} s E2E, {SGLANG_H200[m].conditions} ({SOURCE})"
        for m, n in sorted(marks.items(), key=lambda kv: kv[1])
    ]
