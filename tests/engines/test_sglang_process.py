"""The supervised subprocess: output streamed to the log, and no member of its process group survives
a timeout, a Ctrl-C or a normal exit. Real processes throughout (a child that spawns a grandchild)."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from diffexp.supervise import EngineTimeout, run_streaming

# A child that starts a grandchild in its own process group, records both pids, then sleeps or exits.
FAMILY = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(f"{{__import__('os').getpid()}} {{grandchild.pid}}")
print("child ready", flush=True)
print("second line", flush=True)
{tail}
"""


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def family_script(tmp_path: Path, tail: str) -> tuple[list[str], Path]:
    script = tmp_path / "family.py"
    script.write_text(FAMILY.format(tail=tail))
    pids = tmp_path / "pids.txt"
    return [sys.executable, str(script), str(pids)], pids


def wait_for(path: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)


def read_pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def test_hanging_process_is_killed_at_the_timeout_with_its_children(tmp_path):
    cmd, pids = family_script(tmp_path, "time.sleep(600)")
    log = tmp_path / "sglang.log"
    start = time.monotonic()
    with pytest.raises(EngineTimeout, match="timeout_s=3"):
        run_streaming(cmd, dict(os.environ), log, timeout_s=3, echo=None, grace_s=2)
    assert time.monotonic() - start < 30
    child, grandchild = read_pids(pids)
    assert not alive(child) and not alive(grandchild)
    assert "child ready" in log.read_text()


def test_process_ignoring_sigterm_is_sigkilled(tmp_path):
    cmd, pids = family_script(tmp_path, "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)")
    with pytest.raises(EngineTimeout):
        run_streaming(cmd, dict(os.environ), tmp_path / "log", timeout_s=2, echo=None, grace_s=1)
    assert not any(alive(pid) for pid in read_pids(pids))


def test_output_is_streamed_to_log_and_console_and_leftovers_are_cleaned(tmp_path):
    cmd, pids = family_script(tmp_path, "sys.exit(0)")  # exits, leaving its grandchild behind
    console = io.StringIO()
    code, tail = run_streaming(cmd, dict(os.environ), tmp_path / "sglang.log", timeout_s=60, echo=console, grace_s=2)
    assert code == 0
    assert tail == ["child ready", "second line"]
    assert console.getvalue() == (tmp_path / "sglang.log").read_text() == "child ready\nsecond line\n"
    assert not any(alive(pid) for pid in read_pids(pids))


def test_nonzero_exit_code_is_returned(tmp_path):
    code, tail = run_streaming(
        [sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
        dict(os.environ),
        tmp_path / "log",
        timeout_s=60,
        echo=None,
    )
    assert code == 3 and tail == ["boom"]


def test_ctrl_c_kills_the_group_and_propagates(tmp_path):
    cmd, pids = family_script(tmp_path, "time.sleep(600)")
    # Deliver a real SIGINT to this process once the family is up, as a terminal's Ctrl-C would.
    threading.Thread(target=lambda: (wait_for(pids), os.kill(os.getpid(), signal.SIGINT)), daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_streaming(cmd, dict(os.environ), tmp_path / "log", timeout_s=120, echo=None, grace_s=2)
    assert not any(alive(pid) for pid in read_pids(pids))


def test_missing_executable_is_a_diffexp_error(tmp_path):
    from diffexp.errors import DiffexpError

    with pytest.raises(DiffexpError, match="not found on PATH"):
        run_streaming(["/nonexistent/sglang", "generate"], dict(os.environ), tmp_path / "log", timeout_s=5, echo=None)
