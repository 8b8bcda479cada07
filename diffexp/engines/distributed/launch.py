"""Start one process per rank for a parallel in-process run, watch them, and bring them all down together.

The ranks run `python -m diffexp.engines.distributed.worker` in their own session, each writing its log to
`run_dir/ranks/rankN.log`; they meet through a file store under `run_dir/launch/`, where rank 0 leaves the
run's RunResult. The first rank to exit non-zero, a timeout, Ctrl-C or SIGTERM ends every rank (SIGTERM, then
SIGKILL to each rank's process group); a rank whose launcher is killed outright dies with it (PDEATHSIG).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from diffexp import rundir
from diffexp.config.schema import Config
from diffexp.engines.distributed import context_parallel
from diffexp.engines.distributed.layout import layout_of
from diffexp.errors import DiffexpError
from diffexp.gpus import no_nvlink_multicast
from diffexp.results import RunResult
from diffexp.supervise import parent_pid_env

log = logging.getLogger(__name__)

POLL_S = 0.1
# How long a rank gets to exit on SIGTERM before its process group is killed.
GRACE_S = 3.0
# After a rank fails, how long the others get to fail too, so that the root cause can be told from the ranks that
# failed because of it (torchelastic's root-cause rule needs a timestamp the killed rank cannot write).
FAILURE_WINDOW_S = 2.0
LOG_TAIL_LINES = 40
# What a rank's log ends with when it failed because a peer did: the collective saw the peer's socket close
# (gloo) or the communicator abort (NCCL). Such a rank is not the root cause while another failure is known.
PEER_FAILURE = re.compile(
    r"Connection (reset|closed) by peer|Broken pipe|remote process exited|ncclRemoteError|NCCL communicator was aborted"
    r"|Watchdog caught collective operation timeout",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LaunchFiles:
    """Where the launcher and its ranks exchange files, all under the run's directory."""

    run_dir: Path

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / rundir.RANKS

    @property
    def launch_dir(self) -> Path:
        return self.run_dir / "launch"

    @property
    def config(self) -> Path:
        return self.launch_dir / rundir.CONFIG_YAML

    @property
    def rendezvous(self) -> Path:
        return self.launch_dir / "rendezvous"

    @property
    def result(self) -> Path:
        return self.launch_dir / "result.json"

    def log(self, rank: int) -> Path:
        return self.logs_dir / f"rank{rank}.log"

    def error(self, rank: int) -> Path:
        """A rank's DiffexpError message: a problem the user can fix, reported as such by the launcher."""
        return self.launch_dir / f"rank{rank}.error"


def run_ranks(cfg: Config, run_dir: Path) -> RunResult:
    """Run `cfg` on `parallel.num_gpus` ranks; rank 0's RunResult, or an invalid one naming the failed rank."""
    from diffexp.engines.diffusers.device import resolve_device

    layout = layout_of(cfg.parallel)
    context_parallel.check_ring_attention(layout, cfg.attention.backend, resolve_device(cfg))
    files = LaunchFiles(Path(run_dir).resolve())
    files.logs_dir.mkdir(parents=True, exist_ok=True)
    files.launch_dir.mkdir(parents=True, exist_ok=True)
    # A reused run dir must not hand this launch an earlier one's store, result or errors.
    for stale in (files.rendezvous, files.result, *map(files.error, range(layout.world_size))):
        stale.unlink(missing_ok=True)
    files.config.write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))

    ranks: list[subprocess.Popen] = []
    try:
        for rank in range(layout.world_size):
            with open(files.log(rank), "wb") as rank_log:
                ranks.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "diffexp.engines.distributed.worker",
                            str(files.run_dir),
                            str(rank),
                            str(layout.world_size),
                        ],
                        stdout=rank_log,
                        stderr=subprocess.STDOUT,
                        env=_rank_env(cfg, layout.world_size),
                        start_new_session=True,
                    )
                )
        log.info(
            "%d ranks (%s; pids %s), logs in %s",
            layout.world_size,
            layout.describe(),
            " ".join(str(p.pid) for p in ranks),
            files.logs_dir,
        )
        failures = _wait(ranks, cfg.engine.timeout_s)
    finally:
        _stop(ranks)

    if not failures:
        result = RunResult.read_json(files.result)
        result.artifacts[rundir.RANKS] = str(files.logs_dir)
        return result
    tails = {r: files.log(r).read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] for r, _ in failures}
    failures = root_cause_first(failures, tails)
    rank, reason = failures[0]
    errors = [r for r, _ in failures if files.error(r).is_file()]
    if errors:
        raise DiffexpError(f"rank {errors[0]}: {files.error(errors[0]).read_text()}")
    log.error("rank %d %s; the end of %s:\n%s", rank, reason, files.log(rank), "\n".join(tails[rank]))
    then = "; ".join(f"rank {r} {why}" for r, why in failures[1:])
    return RunResult(
        valid=False,
        invalid_reason=f"rank {rank} {reason} (see ranks/rank{rank}.log)" + (f"; then {then}" if then else ""),
        artifacts={rundir.RANKS: str(files.logs_dir)},
    )


def root_cause_first(failures: list[tuple[int, str]], tails: dict[int, list[str]]) -> list[tuple[int, str]]:
    """The failed ranks, in the order they were seen, with the root cause moved first: the first whose log does not
    end in a peer's failure (PEER_FAILURE). Where every one does, the order seen stands."""
    own = [f for f in failures if not any(PEER_FAILURE.search(line) for line in tails.get(f[0], []))]
    return own[:1] + [f for f in failures if f not in own[:1]]


def _rank_env(cfg: Config, world_size: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(parent_pid_env())  # each rank dies with the launcher
    # As torchrun does: N ranks each using every core would oversubscribe the machine.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // world_size)))
    if cfg.engine.gpus:
        env["CUDA_VISIBLE_DEVICES"] = cfg.engine.gpus
    return no_nvlink_multicast(env)


def _wait(ranks: list[subprocess.Popen], timeout_s: float) -> list[tuple[int, str]]:
    """[] once every rank exited 0; else (rank, what happened) for each that failed, in the order seen: after the
    first failure the others get FAILURE_WINDOW_S to fail too (or to exit)."""
    deadline = time.monotonic() + timeout_s
    failures: list[tuple[int, str]] = []
    window_ends = None
    while True:
        codes = [p.poll() for p in ranks]
        seen = {r for r, _ in failures}
        failures += [
            (r, _describe_exit(code)) for r, code in enumerate(codes) if code not in (None, 0) and r not in seen
        ]
        if failures and window_ends is None:
            window_ends = time.monotonic() + FAILURE_WINDOW_S
        if all(code is not None for code in codes) or (window_ends is not None and time.monotonic() > window_ends):
            return failures
        if time.monotonic() > deadline:
            rank = next(r for r, code in enumerate(codes) if code is None)
            return failures or [(rank, f"was still running after engine.timeout_s={timeout_s:g}")]
        time.sleep(POLL_S)


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _stop(ranks: list[subprocess.Popen]) -> None:
    """End every rank and whatever it started (each rank leads its own process group)."""
    running = [rank for rank, p in enumerate(ranks) if p.poll() is None]
    started = time.monotonic()
    for rank in running:
        _signal_group(ranks[rank], signal.SIGTERM)
    while any(p.poll() is None for p in ranks) and time.monotonic() < started + GRACE_S:
        time.sleep(POLL_S)
    for p in ranks:
        _signal_group(p, signal.SIGKILL)  # also reaches children of ranks that already exited
        p.wait()
    if running:
        log.warning("stopped rank(s) %s in %.1f s", ", ".join(map(str, running)), time.monotonic() - started)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
