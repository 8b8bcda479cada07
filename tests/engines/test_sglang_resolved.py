"""What SGLang really ran, read from real recorded 0.5.23 CPU runs (tests/fixtures/sglang/, see its README):
the settled server_args as resolved params, contradictions of the request tagged, warmup judged by what ran,
the stage-profiling sync variable, and the memory figures' names."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import pytest

from diffexp.engines import validate
from diffexp.engines.sglang import SGLangEngine, engine, flags, harvest, perf_dump, resolved
from diffexp.engines.sglang.env import SYNC_STAGE_PROFILING
from diffexp.engines.sglang.perf_dump import PerfDump
from diffexp.gpus import NO_NVLINK_MULTICAST

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sglang"
REPLAY = FIXTURES / "replay_sglang.py"


def log_of(case: str) -> harvest.LogFigures:
    return harvest.parse_log((FIXTURES / case / "sglang.log").read_text())


def test_num_gpus_2_alone_gets_cfg_parallel_from_sglang_and_the_run_says_so(make_config):
    """`--num-gpus 2` on a CFG model under the default performance-mode auto: SGLang enabled CFG-parallel 2."""
    log = log_of("cpu_wan_gpus2_auto")
    params = resolved.resolved_params(log.server_args)
    assert params["enable_cfg_parallel"] == "true" and params["cfg_parallel_degree"] == "2"
    assert params["performance_mode"] == "auto" and params["num_gpus"] == "2" and params["ulysses_degree"] == "1"
    assert any("Automatically enabled CFG parallel at degree 2 for 2 GPUs" in line for line in log.tuning_lines)
    cfg = make_config("model=tiny_wan", "engine=sglang", "parallel=gpus2", "engine.performance_mode=auto")
    tags = resolved.tags(cfg, log.server_args)
    assert tags[resolved.TAG_MISMATCH] == (
        "enable_cfg_parallel=true chosen by SGLang, not asked for (parallel.cfg_parallel unset)"
    )
    assert tags[resolved.TAG_AUTO_TUNED] == "performance_mode=auto"
    # The same layout asked for explicitly is no contradiction.
    asked = make_config("model=tiny_wan", "engine=sglang", "parallel=cfg2", "engine.performance_mode=auto")
    assert resolved.mismatches(asked, log.server_args) == []


def test_joyai_pipeline_config_swallows_enable_torch_compile(make_config):
    """Recorded: --enable-torch-compile with JoyAI's pipeline config (JoyImageEditPipelineConfig owns a field
    of that name, so PipelineConfig.update_config_from_dict pops the flag): the settled ServerArgs run eager."""
    command = (FIXTURES / "cpu_joyai_compile_swallowed" / "command.txt").read_text()
    assert "--enable-torch-compile" in command and "--model-id JoyAI-Image-Edit-Diffusers" in command
    log = log_of("cpu_joyai_compile_swallowed")
    assert resolved.resolved_params(log.server_args)["enable_torch_compile"] == "false"
    cfg = make_config("model=joyai_edit", "parallel=single", "offload=default", "compile=on", "compile.warmup=false")
    assert flags.warmup_mode(cfg) == "off" and cfg.engine.performance_mode == "manual"
    tags = resolved.tags(cfg, log.server_args)
    assert tags == {
        resolved.TAG_MISMATCH: "compile.enabled=true but SGLang ran enable_torch_compile=false"
    }  # manual mode: no auto-tuned tag; nothing else contradicts the request


def test_compile_without_warmup_passes_warmup_mode_off_and_is_never_warmup_excluded(make_config, tmp_path):
    """Recorded with the old command (no --warmup-mode): SGLang chose warmup_mode=server, ran no warmup
    request, and still printed "(with warmup excluded)". diffexp now passes --warmup-mode off and judges by
    the warmup request, not by that line."""
    case = FIXTURES / "cpu_flux_compile_no_warmup_mode"
    log = log_of(case.name)
    assert log.server_args["warmup_mode"] == "server" and log.server_args["enable_torch_compile"] is True
    assert log.warmup_excluded_s is not None and not log.warmup_ran
    result = harvest.build_result(perf_dump.read_perf_dump(case / "perf_dump.json"), log)
    assert not result.warmup_excluded
    cfg = make_config("model=tiny_flux", "engine=sglang", "compile=on", "compile.warmup=false", "engine.gpus=0")
    validate(cfg)
    command = engine.prepare(cfg, tmp_path).command
    assert command[command.index("--warmup-mode") + 1] == "off"
    assert resolved.mismatches(cfg, log.server_args) == [
        "compile.warmup=off but SGLang ran warmup_mode=server",
        "engine.performance_mode=manual but SGLang ran performance_mode=auto",
    ]
    # A run whose warmup request did run stays warmup-excluded.
    warm = "cpu_flux_warmup"
    assert harvest.build_result(
        perf_dump.read_perf_dump(FIXTURES / warm / "perf_dump.json"), log_of(warm)
    ).warmup_excluded


def test_no_server_args_line_is_tagged_unknown(make_config):
    assert resolved.tags(make_config("engine=sglang"), None) == {
        resolved.TAG_UNKNOWN: "no server_args line in the log: what SGLang ran is not known"
    }


def test_sync_stage_profiling_reaches_the_process_and_is_tagged(make_config, tmp_path):
    seen = tmp_path / "env.json"
    replay = [
        f"engine.executable={shlex.quote(sys.executable)} {shlex.quote(str(REPLAY))}",
        f"+engine.env.DIFFEXP_REPLAY={FIXTURES / 'cpu_flux_native'}",
        f"+engine.env.DIFFEXP_REPLAY_ENVFILE={seen}",
        "engine.gpus=0",
    ]
    cfg = make_config("model=flux1_dev", "offload=default", *replay)
    result = SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert json.loads(seen.read_text())[SYNC_STAGE_PROFILING] == "1"
    assert result.tags["sglang.sync_stage_profiling"] == "true"
    # Replayed server_args (performance_mode auto, recorded before diffexp pinned manual) are read back.
    assert result.resolved["performance_mode"] == "auto"
    assert "engine.performance_mode=manual but SGLang ran performance_mode=auto" in result.tags[resolved.TAG_MISMATCH]
    assert Path(result.artifacts["sglang_server_args"]).is_file()
    off = make_config("model=flux1_dev", "offload=default", *replay, "engine.sync_stage_profiling=false", run="off")
    result = SGLangEngine().run(off, Path(off.output_dir))
    assert SYNC_STAGE_PROFILING not in json.loads(seen.read_text())
    assert result.tags["sglang.sync_stage_profiling"] == "false"


def test_nvlink_multicast_stays_off_in_the_sglang_process(make_config, tmp_path, monkeypatch, caplog):
    """Set on in the inherited environment and in engine.env, it is off in the process SGLang runs in, loudly."""
    seen = tmp_path / "env.json"
    monkeypatch.setenv("NVSHMEM_DISABLE_NVLS", "0")
    cfg = make_config(
        "model=flux1_dev", "offload=default", "parallel=ulysses2", "parallel.num_gpus=2",
        f"engine.executable={shlex.quote(sys.executable)} {shlex.quote(str(REPLAY))}",
        f"+engine.env.DIFFEXP_REPLAY={FIXTURES / 'cpu_flux_ulysses2'}", f"+engine.env.DIFFEXP_REPLAY_ENVFILE={seen}",
        "+engine.env.NCCL_NVLS_ENABLE=1", "engine.gpus='0,1'",
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="diffexp.gpus"):
        SGLangEngine().run(cfg, Path(cfg.output_dir))
    env = json.loads(seen.read_text())
    assert {k: env.get(k) for k in NO_NVLINK_MULTICAST} == NO_NVLINK_MULTICAST
    assert "NCCL_NVLS_ENABLE=1 overridden with 0" in caplog.text
    assert "NVSHMEM_DISABLE_NVLS=0 overridden with 1" in caplog.text
    assert "NCCL_NVLS_ENABLE=0" in (Path(cfg.output_dir) / "command.sh").read_text()


# The memory checkpoints as SGLang 0.5.23 names them on a GPU (gpu_worker.py: before_forward, after_forward,
# load_peak, runtime_peak, warmup_peak; MemorySnapshot's fields). CPU runs record none (see the README), so
# this one dict is written out here, in MiB as SGLang writes them.
GPU_CHECKPOINTS = {
    "before_forward": {"allocated_mb": 30720.0, "reserved_mb": 31744.0, "peak_allocated_mb": 30720.0,
                       "peak_reserved_mb": 31744.0, "peak_host_anon_mb": 2048.0},
    "after_forward": {"allocated_mb": 30800.0, "reserved_mb": 40960.0, "peak_allocated_mb": 38912.0,
                      "peak_reserved_mb": 40960.0, "peak_host_anon_mb": 2048.0},
    "load_peak": {"allocated_mb": 30800.0, "reserved_mb": 40960.0, "peak_allocated_mb": 45056.0,
                  "peak_reserved_mb": 46080.0, "peak_host_anon_mb": 2048.0},
    "runtime_peak": {"allocated_mb": 30800.0, "reserved_mb": 40960.0, "peak_allocated_mb": 38912.0,
                     "peak_reserved_mb": 40960.0, "peak_host_anon_mb": 2048.0},
}  # fmt: skip


def test_peak_mem_gib_is_the_measured_requests_peak_allocated_and_each_figure_has_its_own_name():
    dump = PerfDump(
        Path("perf_dump.json"), 1000.0, {"DenoisingStage": 1000.0}, {"DenoisingStage": 1}, [10.0], GPU_CHECKPOINTS
    )
    log = harvest.LogFigures(max_peak_mem_mb=40960.0)
    result = harvest.build_result(dump, log)
    # The in-process engine's quantity: the allocator's peak allocated during the measured generation,
    # not the load's peak (45056 MiB) and not reserved memory.
    assert result.peak_mem_gib == 38.0
    m = result.metrics()
    assert m["mem.peak_allocated_gib"] == 38.0 and m["mem.peak_reserved_gib"] == 40.0
    assert m["mem.load_peak.peak_allocated_gib"] == 44.0 and m["mem.load_peak.peak_reserved_gib"] == 45.0
    assert m["mem.before_forward.allocated_gib"] == 30.0 and m["mem.after_forward.reserved_gib"] == 40.0
    assert m["mem.server_peak_reserved_gib"] == 40.0  # the server's "Max peak" line: reserved, under its own name


def test_cpu_dumps_have_no_memory_so_no_peak_is_invented():
    dump = perf_dump.read_perf_dump(FIXTURES / "cpu_flux_native" / "perf_dump.json")
    result = harvest.build_result(dump, log_of("cpu_flux_native"))
    assert result.peak_mem_gib is None and not any(k.startswith("mem.") for k in result.metrics())


@pytest.mark.parametrize("case", ["cpu_wan_gpus2_auto", "cpu_joyai_compile_swallowed"])
def test_debug_level_recordings_log_the_lines_diffexp_reads(case):
    """Recorded with --log-level debug (diffexp's default now): the settled arguments are there; on CPU the
    residency hint is not (gpu_worker skips do_mem_analysis on CPU), so no residency tag is made up."""
    log = log_of(case)
    assert log.server_args["log_level"] == "debug" and log.residency_lines == []


def test_diffexp_compile_without_warmup_run_recorded_as_it_ran():
    """Made by SGLangEngine.run (see the fixtures README): the argv pins --warmup-mode off and manual placement,
    the sync variable is exported, and SGLang settled exactly on what was asked."""
    case = FIXTURES / "diffexp_tiny_flux_compile_no_warmup"
    script = (case / "command.sh").read_text()
    assert f"export {SYNC_STAGE_PROFILING}=1" in script
    assert "--warmup-mode off" in script and "--performance-mode manual" in script and "--log-level debug" in script
    log = log_of(case.name)
    assert log.server_args["warmup_mode"] == "off" and log.server_args["enable_torch_compile"] is True
    assert log.warmup_excluded_s is None and not log.warmup_ran
    assert not harvest.build_result(perf_dump.read_perf_dump(case / "perf_dump.json"), log).warmup_excluded
