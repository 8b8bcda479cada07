"""GPU leases: points that run at the same time on one machine never share a GPU.

A lease is an exclusive `flock` on one file per GPU id in a per-machine directory, taken all or
nothing, so two sweeps (or two workers of a parallel launcher) cannot deadlock on half a set. The
kernel drops the locks when a process dies, so a crashed point never leaves a GPU taken. The
leased ids go to the engine through `engine.gpus`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Optional

from diffexp.errors import DiffexpError
from diffexp.gpus import visible_gpu_ids

log = logging.getLogger(__name__)

LEASE_DIR_ENV = "DIFFEXP_GPU_LEASE_DIR"


def lease_dir() -> Path:
    """Per machine, not per sweep: two sweeps on one machine must not share GPUs either."""
    path = Path(os.environ.get(LEASE_DIR_ENV) or Path(tempfile.gettempdir()) / "diffexp-gpu-leases")
    path.mkdir(parents=True, exist_ok=True)
    try:
        path.chmod(0o1777)  # shared by every user of the machine, like /tmp
    except OSError:
        pass
    return path


def _try_lock(path: Path):
    handle = open(path, "a+")
    try:
        os.chmod(path, 0o666)
    except OSError:
        pass
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextmanager
def lease(
    count: int,
    pool: Sequence[str],
    timeout_s: float = 3600.0,
    poll_s: float = 1.0,
    directory: Optional[Path] = None,
) -> Iterator[list[str]]:
    """Hold `count` GPUs of `pool` exclusively for the `with` body; waits while they are taken."""
    if count > len(pool):
        raise DiffexpError(
            f"parallel.num_gpus={count}: only {len(pool)} GPU(s) to lease from ({','.join(pool) or 'none'})"
        )
    directory = directory or lease_dir()
    deadline = time.monotonic() + timeout_s
    waited = False
    while True:
        with ExitStack() as stack:
            held: list[str] = []
            for gpu in pool:
                handle = _try_lock(directory / f"gpu{gpu}.lock")
                if handle is None:
                    continue
                stack.callback(handle.close)  # closing the file drops the lock
                held.append(gpu)
                if len(held) == count:
                    break
            if len(held) == count:
                log.info("leased GPU(s) %s", ",".join(held))
                yield held
                return
        # Not enough free: give back what we took (ExitStack did) and wait for a point to finish.
        if time.monotonic() > deadline:
            raise DiffexpError(
                f"no {count} free GPU(s) among {','.join(pool)} after {timeout_s:.0f} s "
                f"(leases in {directory}); another point or sweep holds them"
            )
        if not waited:
            log.info("waiting for %d free GPU(s) among %s", count, ",".join(pool))
            waited = True
        time.sleep(poll_s)


def needs_lease(engine_name: str, device: str, engine_gpus: Optional[str], dry_run: bool) -> bool:
    """Lease only where GPUs are chosen for us: not when the user pinned engine.gpus, not on CPU, not under Slurm."""
    if dry_run or engine_gpus or os.environ.get("SLURM_JOB_ID"):
        # Slurm already gives each job its own GPUs (and may renumber them from 0 in every job).
        return False
    if device == "cpu" and engine_name != "sglang":
        return False
    return bool(visible_gpu_ids())
