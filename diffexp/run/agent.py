"""A run's tracking agent: the tracking half of a run (diffexp/run/record.py) in a process of its own, so that
importing MLflow, checking and opening the store and closing orphans (about 2.5 s on a 2-core machine) happen on
another core while the run's process imports torch and diffusers and loads the model.

`python -m diffexp` starts one per run. The protocol is one JSON object per line: the run's process writes
requests on the agent's stdin, the agent answers each on the pipe named by `--reply-fd`:
  {"op": "open", "run_dir", "parent_run_id"}  -> {"run_id", "uri"} or {"error"}  (config.yaml is in run_dir)
  {"op": "result", "path"}                    -> {"status"}   (a RunResult's JSON: logged, then reviewed)
  {"op": "end", "status", "type", "error", "traceback"} -> {"status"}  (the run's process failed or was stopped)
The agent is in a session of its own (Ctrl-C at the terminal reaches the run's process, which reports it) and
writes the pid tags: a run whose agent died is found by `python -m diffexp.gc`. When the run's process dies
without a word (SIGKILL, out of memory), the agent sees its stdin close and ends the run FAILED saying so.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Optional

from diffexp import rundir
from diffexp.errors import DiffexpError, ReportedFailure, ReportedInterrupt, RunInterrupted
from diffexp.supervise import interrupts_deferred

log = logging.getLogger(__name__)
RUN_PID = os.getppid()  # the run's process: the agent's parent while it lives

OPEN_TIMEOUT_S = 600.0  # importing MLflow, a server's reachability check, the orphan search, creating the run
END_TIMEOUT_S = 1800.0  # logging the result and its artifacts, then the review (PSNR / SSIM of every output)


class TrackingAgent:
    """The run's side of the protocol."""

    def __init__(self, proc: subprocess.Popen, replies):
        self.proc = proc
        self.replies = replies
        self.done = False

    @classmethod
    def start(cls, tracking_uri: Optional[str]) -> TrackingAgent:
        read_fd, write_fd = os.pipe()
        command = [sys.executable, "-m", "diffexp.run.agent", "--reply-fd", str(write_fd)]
        if tracking_uri:
            command += ["--tracking-uri", tracking_uri]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            pass_fds=(write_fd,),
            start_new_session=True,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        os.close(write_fd)
        return cls(proc, os.fdopen(read_fd, "r"))

    def _ask(self, request: dict, timeout_s: float) -> dict:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died: the reply below says how
        while True:  # skipping the answer to a request this process stopped waiting for (Ctrl-C during `open`)
            ready, _, _ = select.select([self.replies], [], [], timeout_s)
            line = self.replies.readline() if ready else ""
            if not line:
                self.done = True
                code = self.proc.poll()
                why = f"exited with {code}" if code is not None else f"did not answer within {timeout_s:.0f} s"
                raise DiffexpError(f"the run's tracking agent {why} (its messages are above, on stderr)")
            reply = json.loads(line)
            if reply.get("op") == request["op"]:
                break
        if "error" in reply:
            self.done = True
            raise DiffexpError(reply["error"])
        return reply

    def open(self, run_dir: Path, parent_run_id: Optional[str]) -> tuple[str, str]:
        reply = self._ask({"op": "open", "run_dir": str(run_dir), "parent_run_id": parent_run_id}, OPEN_TIMEOUT_S)
        if "run_id" not in reply:  # created, then ended while its inputs were logged
            self.done = True
            raise DiffexpError(f"the run's record ended {reply.get('status')} as it was opened (see run.log)")
        return reply["run_id"], reply["uri"]

    def finish(self, result_json: Path) -> str:
        with interrupts_deferred() as pending:  # the result is measured: let its record be written
            reply = self._ask({"op": "result", "path": str(result_json)}, END_TIMEOUT_S)
        self.close()
        if pending:  # the run is recorded; now honour the interrupt
            raise KeyboardInterrupt
        return reply["status"]

    def report(self, exc: BaseException) -> None:
        """The run's process failed or was stopped: its traceback into run.log, then the record ended so."""
        interrupted = isinstance(exc, (KeyboardInterrupt, RunInterrupted))
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        log.error("run ends %s", "KILLED" if interrupted else "FAILED", exc_info=exc)
        request = {
            "op": "end",
            "status": "KILLED" if interrupted else "FAILED",
            "type": type(exc).__name__,
            "error": str(exc),
            "traceback": text,
        }
        with interrupts_deferred():  # the run is ending anyway: a repeat waits for its record
            try:
                self._ask(request, END_TIMEOUT_S)
            except DiffexpError as agent_error:
                log.error("the run's record could not be ended: %s", agent_error)
        self.close()

    def close(self) -> None:
        """No more requests: an agent that has not opened a run exits without one."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.replies.close()
        self.done = True


# The agent's own side.


def _reply(out, op: str, message: dict) -> None:
    try:
        out.write(json.dumps({"op": op, **message}) + "\n")
        out.flush()
    except BrokenPipeError:  # the run's process is gone; the record is written all the same
        pass


def _request(stdin) -> Optional[dict]:
    line = stdin.readline()
    return json.loads(line) if line.strip() else None


def _serve(args, out) -> int:
    from diffexp.config.store import load_config_yaml
    from diffexp.tracking.uri import check_usable, resolve_uri

    problem = None
    try:
        uri = resolve_uri(args.tracking_uri)
        check_usable(uri)
        from diffexp.run.record import close_orphans, log_inputs, open_run, record_result

        close_orphans(uri)
    except DiffexpError as exc:
        problem = str(exc)
    request = _request(sys.stdin)
    if request is None or request.get("op") != "open":
        return 0  # the run was refused before it started: no record
    if problem:
        _reply(out, "open", {"error": problem})
        return 2
    run_dir = Path(request["run_dir"])
    log_file = run_dir / rundir.RUN_LOG
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    cfg = load_config_yaml(run_dir / rundir.CONFIG_YAML)
    try:
        recorder = open_run(cfg, run_dir, request.get("parent_run_id"), log_file)
    except Exception as exc:
        _reply(out, "open", {"error": f"cannot create the run in {uri}: {type(exc).__name__}: {exc}"})
        return 2
    signal.signal(signal.SIGTERM, _stopped)  # killed itself: the record ends KILLED
    try:
        with recorder:
            log_inputs(recorder, cfg, run_dir)
            _reply(out, "open", {"run_id": recorder.run_id, "uri": recorder.uri})
            request = _request(sys.stdin)
            if request is None:
                raise ReportedFailure(
                    "ProcessDied",
                    f"the run's process (pid {RUN_PID}) ended without reporting its result (killed, or out of "
                    "memory); see run.log",
                    "",
                )
            if request["op"] == "end":
                kind = ReportedInterrupt if request["status"] == "KILLED" else ReportedFailure
                raise kind(request["type"], request["error"], request["traceback"])
            record_result(recorder, cfg, _result(request["path"]), run_dir)
    except BaseException:  # ended FAILED or KILLED, with the log and traceback, by the recorder
        request = request or {"op": "result"}
    _reply(out, request["op"], {"status": recorder.status})
    return 0


def _result(path: str):
    from diffexp.results import RunResult

    return RunResult.read_json(Path(path))


def _stopped(signum, frame):
    from diffexp.errors import RunInterrupted

    raise RunInterrupted(f"the tracking agent received signal {signum}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.run.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--reply-fd", type=int, required=True)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's process's to report
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from diffexp.logs import quiet_libraries_logging

    quiet_libraries_logging()
    out = os.fdopen(args.reply_fd, "w")
    code = _serve(args, out)
    try:
        out.close()
    except BrokenPipeError:
        pass
    # Everything is written (MLflow's client calls return once stored): leave now. An interpreter's orderly exit
    # with MLflow, SQLAlchemy and their threads loaded takes seconds the run's process would wait out.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
