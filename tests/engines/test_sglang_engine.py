"""SGLangEngine end to end against a real subprocess: a stand-in `sglang` (fixtures/sglang/replay_sglang.py)
replays real recorded SGLang 0.5.23 runs, so the gate, the harvest and the failure paths see real output."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffexp.engines.sglang import SGLangEngine
from diffexp.errors import DiffexpError
from diffexp.supervise import EngineTimeout
from tests.conftest import REPO, cli_env, run_cli

FIXTURES = REPO / "tests" / "fixtures" / "sglang"
REPLAY = FIXTURES / "replay_sglang.py"


def replay(case: str, *extra: str) -> list[str]:
    return [
        f"engine.executable={shlex.quote(sys.executable)} {shlex.quote(str(REPLAY))}",
        f"+engine.env.DIFFEXP_REPLAY={FIXTURES / case}",
        "engine.gpus=0",
        *extra,
    ]


def test_native_run_is_harvested_from_dump_log_and_outputs(make_config, tmp_path):
    cfg = make_config("model=flux1_dev", "offload=default", "compile.warmup=true", *replay("cpu_flux_warmup"))
    result = SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert result.valid, result.invalid_reason
    assert result.tags["backend"] == "sglang" and result.tags["engine"] == "sglang"
    assert result.warmup_excluded and result.denoise_s > 0 and len(result.denoise_step_ms) == 4
    assert [Path(p).suffix for p in result.outputs] == [".png"]
    run_dir = Path(cfg.output_dir)
    assert result.artifacts["perf_dump"] == str(run_dir / "perf_dump.json")
    assert result.artifacts["sglang_log"] == str(run_dir / "sglang.log")
    command = (run_dir / "command.sh").read_text()
    assert "--warmup-mode request" in command and f"--perf-dump-path {run_dir / 'perf_dump.json'}" in command
    assert "Warmed-up request processed in" in (run_dir / "sglang.log").read_text()


def test_an_unusable_perf_dump_is_named_and_the_figures_come_from_the_log(make_config, tmp_path):
    import json
    import shutil

    case = tmp_path / "broken_dump"
    shutil.copytree(FIXTURES / "cpu_flux_warmup", case)
    dump = json.loads((case / "perf_dump.json").read_text())
    dump["total_duration_ms"] = -1.0  # a real run's dump, one field corrupted
    (case / "perf_dump.json").write_text(json.dumps(dump))
    cfg = make_config(
        "model=flux1_dev", "offload=default", "compile.warmup=true", *replay("cpu_flux_warmup")[:1],
        f"+engine.env.DIFFEXP_REPLAY={case}", "engine.gpus=0",
    )  # fmt: skip
    result = SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert "total_duration_ms is -1.0 ms" in result.tags["perf_dump.problem"]
    assert result.tags["figures_from"] == "log" and result.denoise_step_ms == []
    assert result.denoise_s > 0 and result.e2e_s > 0  # the log's stage and request lines
    assert result.artifacts["perf_dump"] == str(Path(cfg.output_dir) / "perf_dump.json")  # kept to look at


def test_fallback_to_diffusers_is_an_invalid_run(make_config):
    cfg = make_config("model=flux1_dev", "offload=default", *replay("cpu_flux_auto_fallback"))
    result = SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert not result.valid and "diffusers backend" in result.invalid_reason
    assert result.tags["backend_fallback"] == "true"


def test_explicit_diffusers_baseline_is_tagged_not_rejected(make_config):
    cfg = make_config(
        "model=flux1_dev", "offload=default", "engine.backend=diffusers", *replay("cpu_flux_diffusers_baseline")
    )
    result = SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert result.valid and result.tags["backend"] == "diffusers-baseline"
    assert "--backend diffusers" in (Path(cfg.output_dir) / "command.sh").read_text()


def test_request_failure_with_exit_code_zero_is_an_error(make_config):
    cfg = make_config("model=flux1_dev", "offload=default", *replay("cpu_wan_failure"))
    with pytest.raises(DiffexpError, match="exited 0 but the request failed") as info:
        SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert "fused_norm_scale_shift_cpu" in str(info.value)


def test_nonzero_exit_is_an_error_with_the_log_tail(make_config):
    cfg = make_config(
        "model=flux1_dev", "offload=default", *replay("cpu_flux_native", "+engine.env.DIFFEXP_REPLAY_EXIT=3")
    )
    with pytest.raises(DiffexpError, match="exited with code 3") as info:
        SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert "Worker 0: Shutdown complete." in str(info.value)


def test_out_of_memory_gets_a_clear_message(make_config, tmp_path):
    script = tmp_path / "oom_sglang.py"
    script.write_text("import torch\nprint('allocating', flush=True)\ntorch.empty(2**50, dtype=torch.uint8)\n")
    cfg = make_config(
        "model=flux1_dev",
        "offload=default",
        "engine.gpus=0",
        f"engine.executable={shlex.quote(sys.executable)} {shlex.quote(str(script))}",
    )
    with pytest.raises(DiffexpError, match="ran out of memory") as info:
        SGLangEngine().run(cfg, Path(cfg.output_dir))
    assert "offload" in str(info.value)


def test_timeout_kills_the_run(make_config):
    cfg = make_config(
        "model=flux1_dev",
        "offload=default",
        "engine.timeout_s=3",
        *replay("cpu_flux_native", "+engine.env.DIFFEXP_REPLAY_SLEEP=600"),
    )
    with pytest.raises(EngineTimeout):
        SGLangEngine().run(cfg, Path(cfg.output_dir))


def test_environment_is_set_for_the_child(make_config, tmp_path):
    probe = tmp_path / "env_sglang.py"
    probe.write_text(
        "import json, os\nprint(json.dumps({k: os.environ.get(k) for k in "
        "['FLASHINFER_DISABLE_VERSION_CHECK', 'SGLANG_TORCH_PROFILER_DIR', 'HF_HUB_OFFLINE', 'CUDA_VISIBLE_DEVICES']}))\n"
    )
    cfg = make_config(
        "model=flux1_dev",
        "offload=default",
        "engine.hf_offline=true",
        "engine.gpus='2,3'",
        f"engine.executable={shlex.quote(sys.executable)} {shlex.quote(str(probe))}",
    )
    result = SGLangEngine().run(cfg, Path(cfg.output_dir))
    line = (Path(cfg.output_dir) / "sglang.log").read_text().strip()
    assert line == (
        '{"FLASHINFER_DISABLE_VERSION_CHECK": "1", "SGLANG_TORCH_PROFILER_DIR": "'
        f'{Path(cfg.output_dir).resolve() / "traces"}", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "2,3"}}'
    )
    assert not result.valid and "no timing figures" in result.invalid_reason


def test_idle_gpus_are_chosen_from_nvidia_smi(make_config, tmp_path, monkeypatch):
    # A stand-in nvidia-smi on PATH answering the exact query with four GPUs, two of them busy.
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nprintf '0, 40000, 95\\n1, 3, 0\\n2, 70000, 10\\n3, 3, 4\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    cfg = make_config("model=flux1_dev", "parallel=ulysses2")
    text = SGLangEngine().dry_run_text(cfg)
    assert "export CUDA_VISIBLE_DEVICES=1,3" in text and "idle GPUs" in text


def test_dry_run_prints_a_copy_pastable_command_without_sglang(make_config, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no cached token file either
    cfg = make_config("model=flux1_dev", "offload=default", "compile=on", "engine.gpus=0")
    text = SGLangEngine().dry_run_text(cfg)
    command = text.strip().splitlines()[-1]
    args = shlex.split(command)
    assert args[:2] == ["sglang", "generate"]
    assert args[args.index("--model-path") + 1] == "black-forest-labs/FLUX.1-dev"
    assert (
        "--prompt=A futuristic cyberpunk city at night, neon lights reflecting on wet streets, highly detailed, 8k"
        in args
    )
    assert "export FLASHINFER_DISABLE_VERSION_CHECK=1" in text and "export CUDA_VISIBLE_DEVICES=0" in text
    assert "WARNING: model 'black-forest-labs/FLUX.1-dev' is a gated" in text
    assert not Path(cfg.output_dir).exists()  # nothing written


def test_hunyuan3d_dry_run_writes_its_config_file_in_the_script(make_config):
    cfg = make_config("model=hunyuan3d_shape", "offload=resident_dit", "engine.gpus=0")
    text = SGLangEngine().dry_run_text(cfg)
    generated = Path(cfg.output_dir).resolve() / "sglang_config.json"
    assert f"printf '%s\\n' '{{\"paint_enable\": false}}' > {generated}" in text
    assert f"--config {generated}" in text


def test_dry_run_through_python_m_diffexp_creates_no_mlflow_run(tmp_path):
    proc = run_cli(["diffexp", "model=flux1_dev", "engine.dry_run=true", "engine.gpus=0"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = [line for line in proc.stdout.splitlines() if line.strip()][-1]
    assert shlex.split(last)[:2] == ["sglang", "generate"]
    assert "--dit-cpu-offload false" in last  # offload=none is the default group choice
    assert not (tmp_path / "mlruns").exists()


def test_ctrl_c_on_python_m_diffexp_leaves_a_killed_run_and_no_process(tmp_path):
    from mlflow import MlflowClient

    from diffexp.config import check_launch, compose, to_config
    from diffexp.errors import ConfigError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    pidfile = tmp_path / "sglang.pid"
    overrides = [
        "model=flux1_dev",
        "offload=default",
        "engine.device=cpu",
        f"tracking.uri={uri}",
        *replay(
            "cpu_flux_native", "+engine.env.DIFFEXP_REPLAY_SLEEP=600", f"+engine.env.DIFFEXP_REPLAY_PIDFILE={pidfile}"
        ),
    ]
    try:
        check_launch(to_config(compose(overrides)))
    except ConfigError as exc:
        pytest.skip(f"check_launch refuses an sglang run on this machine: {exc}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffexp", *overrides],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 240
    logs = []
    while not any("Shutdown complete" in p.read_text() for p in logs):  # the replay has printed its log
        assert proc.poll() is None and time.monotonic() < deadline, (
            proc.stdout.read() if proc.poll() is not None else "timeout"
        )
        time.sleep(0.2)
        logs = list(tmp_path.glob("outputs/**/sglang.log"))
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("flux1_dev").experiment_id])
    assert run.info.status == "KILLED"
    pid = int(pidfile.read_text())
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    )
