"""GPU leases: concurrent holders never share a GPU; leases are all-or-nothing, released on exit and on death."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from diffexp.errors import DiffexpError
from diffexp.sweeps.gpu_lease import lease, needs_lease

POOL = ["0", "1", "2", "3"]


def test_concurrent_points_never_share_a_gpu(tmp_path):
    holding: dict[int, list[str]] = {}
    overlaps, lock = [], threading.Lock()

    def point(i: int) -> None:
        with lease(2, POOL, timeout_s=30, poll_s=0.01, directory=tmp_path) as gpus:
            with lock:
                taken = {g for held in holding.values() for g in held}
                if taken & set(gpus):
                    overlaps.append((i, gpus, dict(holding)))
                holding[i] = gpus
            time.sleep(0.05)
            with lock:
                del holding[i]

    threads = [threading.Thread(target=point, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps and not holding


def test_waits_then_gives_up_and_releases_on_exit(tmp_path):
    with lease(3, POOL, directory=tmp_path) as held:
        assert held == ["0", "1", "2"]
        with pytest.raises(DiffexpError, match="no 2 free GPU"):
            with lease(2, POOL, timeout_s=0.2, poll_s=0.05, directory=tmp_path):
                pass
        with lease(1, POOL, directory=tmp_path) as one:
            assert one == ["3"]
    with lease(4, POOL, directory=tmp_path) as everything:
        assert everything == POOL
    with pytest.raises(DiffexpError, match="parallel.num_gpus=5"):
        with lease(5, POOL, directory=tmp_path):
            pass


def test_a_lease_held_by_another_process_counts_and_dies_with_it(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from diffexp.sweeps.gpu_lease import lease\n"
                f"with lease(2, {POOL!r}, directory=Path({str(tmp_path)!r})):\n"
                "    print('held', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with lease(2, POOL, timeout_s=1, directory=tmp_path) as gpus:
            assert gpus == ["2", "3"]
    finally:
        holder.kill()
        holder.wait()
    with lease(4, POOL, timeout_s=5, directory=tmp_path) as gpus:  # the kernel dropped the dead holder's locks
        assert gpus == POOL


def test_when_a_point_needs_a_lease(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr("diffexp.sweeps.gpu_lease.visible_gpu_ids", lambda: POOL)
    assert needs_lease("sglang", "auto", None, dry_run=False)
    assert not needs_lease("sglang", "auto", "0,1", dry_run=False)  # pinned by the user
    assert not needs_lease("diffusers", "cpu", None, dry_run=False)
    assert not needs_lease("sglang", "auto", None, dry_run=True)
    monkeypatch.setenv("SLURM_JOB_ID", "42")  # the scheduler isolates GPUs
    assert not needs_lease("sglang", "auto", None, dry_run=False)


def test_engine_gpus_name_devices_as_cuda_visible_devices_does(monkeypatch, make_config):
    """A lease hands out ids from CUDA_VISIBLE_DEVICES; torch numbers the visible GPUs from 0."""
    import torch

    from diffexp.engines.diffusers.device import resolve_device
    from diffexp.errors import DiffexpError

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert resolve_device(make_config("engine.device=cuda", "engine.gpus='6'")) == torch.device("cuda", 2)
    assert resolve_device(make_config("engine.device=cuda", "engine.gpus='5,6'")) == torch.device("cuda", 1)
    with pytest.raises(DiffexpError, match=r"GPU '1' is not one of CUDA_VISIBLE_DEVICES=4,5,6,7; allowed: 4, 5, 6, 7"):
        resolve_device(make_config("engine.device=cuda", "engine.gpus='1'"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert resolve_device(make_config("engine.device=cuda", "engine.gpus='3'")) == torch.device("cuda", 3)
