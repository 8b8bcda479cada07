"""Run a command in its own process group, stream its output to the console and a log file,
and never leave a member of that group behind (timeout, crash, Ctrl-C or normal exit)."""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, TextIO

from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

# SIGTERM first so workers can release the GPU and NCCL cleanly; SIGKILL after this long.
GRACE_S = 10.0
POLL_S = 0.2


# The pid a parent passes to the children that must die with it (die_with_parent): set afresh by each parent.
PARENT_PID_ENV = "DIFFEXP_PARENT_PID"


def parent_pid_env() -> dict[str, str]:
    """What a child started by this process needs in its environment for die_with_parent."""
    return {PARENT_PID_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux's PDEATHSIG): a parent killed outright
    (SIGKILL, a job's time limit) cannot stop its children itself. The pid the parent passed down (parent_pid_env)
    catches a parent that died before the call took effect."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    parent_pid = os.environ.get(PARENT_PID_ENV)
    if parent_pid and os.getppid() != int(parent_pid):
        os._exit(1)


class EngineTimeout(DiffexpError):
    """The engine process ran past engine.timeout_s and was killed with its whole group."""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we cannot signal still exists
        return True
    return True


def kill_group(pgid: int, grace_s: float = GRACE_S) -> None:
    """SIGTERM the group, wait up to grace_s for it to empty, then SIGKILL what is left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(POLL_S)
    log.warning("process group %d still has members after SIGKILL (zombies awaiting their parent?)", pgid)


class _Pump(threading.Thread):
    """Copies the child's merged stdout/stderr line by line to the log file and the console."""

    def __init__(self, stream: TextIO, log_file: TextIO, echo: Optional[TextIO], tail_lines: int):
        super().__init__(daemon=True)
        self.stream, self.log_file, self.echo = stream, log_file, echo
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)

    def run(self) -> None:
        for line in self.stream:
            self.log_file.write(line)
            self.log_file.flush()
            self.tail.append(line.rstrip("\n"))
            if self.echo is not None:
                self.echo.write(line)
                self.echo.flush()


def run_streaming(
    cmd: list[str],
    env: dict[str, str],
    log_path: Path,
    timeout_s: float,
    echo: Optional[TextIO] = sys.stdout,
    grace_s: float = GRACE_S,
    tail_lines: int = 60,
    what: str = "sglang generate",
) -> tuple[int, list[str]]:
    """(exit code, last lines of output). Raises EngineTimeout past timeout_s; re-raises
    KeyboardInterrupt / RunInterrupted after killing the group. The group is always emptied."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log_file:
        try:
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                text=True,
                bufsize=1,
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise DiffexpError(
                f"cannot start {cmd[0]!r}: not found on PATH (install the sglang extra or set engine.executable)"
            ) from exc
        pgid = proc.pid  # start_new_session: the child leads its own group
        log.info("started pid %d (process group %d)", proc.pid, pgid)
        pump = _Pump(proc.stdout, log_file, echo, tail_lines)
        pump.start()
        deadline = time.monotonic() + timeout_s
        try:
            # Short waits keep the main thread responsive to Ctrl-C / SIGTERM handlers.
            while True:
                try:
                    proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        log.error("timed out after %.0f s; killing process group %d", timeout_s, pgid)
                        raise EngineTimeout(
                            f"{what} ran past engine.timeout_s={timeout_s:g} s and was killed (log: {log_path})"
                        ) from None
        except BaseException:
            # Ctrl-C, RunInterrupted, or the timeout above: nothing of the group may outlive us.
            kill_group(pgid, grace_s)
            proc.wait()
            pump.join(timeout=5)
            raise
        # The leader exited; workers it left in the group (e.g. stuck GPU ranks) go too.
        if _group_alive(pgid):
            log.warning("process %d exited but left members in its group; killing them", proc.pid)
            kill_group(pgid, grace_s)
        pump.join(timeout=5)
        return proc.returncode, list(pump.tail)


@contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """SIGINT/SIGTERM held while a run's end is written (a second Ctrl-C must not lose the log and traceback);
    yields the signals that arrived. Outside the main thread signals cannot be handled: nothing changes."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return

    def hold(signum, frame):
        pending.append(signum)
        log.warning("signal %d: writing the run's end first (log, traceback, status), then stopping", signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
