"""profile=nsys in the in-process engine: the generation runs in a child process (nsys's prefix replaced, or a
fake nsys on PATH, since nsys is not installed on CI machines) and its figures come back as the run's."""

from __future__ import annotations

import os

from diffexp.engines.nsys_child import CHILD_LOG, run_under_nsys


def test_generation_runs_in_a_child_and_returns_its_figures(make_config, tmp_path):
    cfg = make_config("profile=nsys", "model.sampling.num_inference_steps=2")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = run_under_nsys(cfg, run_dir, wrapper=[])
    assert result.profiled and result.denoise_s > 0 and len(result.denoise_step_ms) == 2
    assert (run_dir / "outputs" / "image_000.png").is_file() and (run_dir / CHILD_LOG).is_file()
    # No report without nsys: the figures stay, the breakdown is simply absent.
    assert not any(k.startswith("profile.nsys.") for k in result.extra_metrics)


def test_nsys_run_is_refused_before_launch_without_nsys(make_config, tmp_path):
    import shutil

    import pytest

    from diffexp.errors import ConfigError
    from diffexp.run import execute

    if shutil.which("nsys"):
        pytest.skip("nsys is installed here")
    with pytest.raises(ConfigError, match="profile.mode=nsys: `nsys` is not on PATH"):
        execute(make_config("profile=nsys"), tmp_path / "run")


def test_a_timeout_ends_the_generation_under_nsys_too(make_config, tmp_path, monkeypatch):
    """A fake `nsys` on PATH takes the real command line (diffexp.engines.nsys's prefix), starts a process of its own
    and waits on it. At engine.timeout_s the whole group goes, SIGTERM then SIGKILL, not only nsys (which would
    leave the generation running on the GPU)."""
    import time
    from pathlib import Path

    import pytest

    from diffexp.supervise import EngineTimeout

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    bin_dir, argv_file, pid_file = tmp_path / "bin", tmp_path / "nsys_argv", tmp_path / "grandchild_pid"
    bin_dir.mkdir()
    fake_nsys = bin_dir / "nsys"
    fake_nsys.write_text(f'#!/bin/sh\necho "$@" > {argv_file}\nsleep 300 &\necho $! > {pid_file}\nwait\n')
    fake_nsys.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="the nsys-profiled generation ran past engine.timeout_s=3"):
        run_under_nsys(make_config("profile=nsys", "engine.timeout_s=3"), run_dir)
    assert time.monotonic() - started < 60
    argv = argv_file.read_text()
    assert argv.startswith("profile -t cuda") and "-m diffexp.engines.nsys_child" in argv
    pid = int(pid_file.read_text())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
