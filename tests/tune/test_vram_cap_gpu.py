"""engine.vram_cap_gib on a real GPU: the allocator refuses what the budget does not have, and a trial under the
cap is an infeasible trial with the OOM as its reason."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_the_cap_turns_an_allocation_over_budget_into_an_oom():
    from diffexp.engines.diffusers.device import cap_vram

    device = torch.device("cuda", 0)
    cap_vram(device, 1.0)
    try:
        with pytest.raises(torch.OutOfMemoryError):
            torch.empty(int(1.5 * 2**30), dtype=torch.uint8, device=device)
        torch.empty(int(0.5 * 2**30), dtype=torch.uint8, device=device)  # within the cap
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()


def test_a_trial_over_the_vram_budget_is_infeasible_with_its_oom(tmp_path):
    from diffexp.tune.config import ParamSpec, TuneConfig
    from diffexp.tune.search import Search, machine

    tcfg = TuneConfig(
        space={"v": ParamSpec(choices={"default": []})},
        vram_gib=0.001,
        repeats=1,
        max_trials=1,
        sglang_auto_anchor=False,
    )
    search = Search(
        tcfg, ["model=tiny_flux", "model.sampling.num_inference_steps=2", "tracking.enabled=false"], tmp_path, machine()
    )
    (trial,) = search.run({})
    assert trial.state == "infeasible" and "OutOfMemory" in trial.reason
