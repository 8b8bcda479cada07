"""The throttle logic on GPU samples. The samples here are CONSTRUCTED for the pure logic (no NVML on this
machine); real ones come from `python -m diffexp.measure.record_nvml` on a GPU and belong in tests/fixtures/."""

from __future__ import annotations

import pytest

from diffexp.measure.gpu import REASON_BITS, GpuSample, GpuSampler, read_samples, summarize_samples, write_samples


def constructed(sm_mhz: float, reasons: int = 0, util: float = 99.0, t: float = 0.0) -> GpuSample:
    return GpuSample(t, 0, sm_mhz, 2619.0, 650.0, 700.0, 60.0, util, 40.0, reasons)


def test_steady_clocks_without_reasons_are_not_throttled():
    samples = [constructed(1980.0, t=i / 20) for i in range(20)]
    samples.append(constructed(345.0, REASON_BITS["gpu_idle"], util=0.0))  # an idle gap is not a throttle
    metrics, tags = summarize_samples(samples, other_procs_mib=0.0)
    assert tags == {"gpu.throttle": "none", "gpu.clocks_fell": "false", "gpu.throttled": "false"}
    assert metrics["gpu.sm_mhz_min"] == 345.0 and metrics["gpu.power_limit_w"] == 700.0
    assert metrics["gpu.samples"] == 21 and metrics["gpu.other_procs_mib"] == 0.0


def test_power_and_thermal_reasons_are_named():
    power, thermal = REASON_BITS["sw_power_cap"], REASON_BITS["hw_thermal"]
    samples = [constructed(1980.0), constructed(1900.0, power), constructed(1890.0, power | thermal)]
    _, tags = summarize_samples(samples)
    assert tags["gpu.throttle"] == "power,thermal" and tags["gpu.throttled"] == "true"
    assert tags["gpu.clocks_fell"] == "false"  # 4.5 % lower: under the 10 % drop


def test_clocks_that_fall_under_load_mark_the_run_throttled_without_a_reason():
    samples = [constructed(1980.0), constructed(1980.0), constructed(1500.0)]
    _, tags = summarize_samples(samples)
    assert tags == {"gpu.throttle": "none", "gpu.clocks_fell": "true", "gpu.throttled": "true"}


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_samples_round_trip_through_files(tmp_path, suffix):
    samples = [constructed(1980.0, REASON_BITS["sw_power_cap"], t=0.05 * i) for i in range(3)]
    assert read_samples(write_samples(samples, tmp_path / f"s{suffix}")) == samples


def test_sampler_is_inactive_without_nvml():
    with GpuSampler(indices=[]) as sampler:
        pass
    assert not sampler.active and sampler.summary() == ({}, {})
