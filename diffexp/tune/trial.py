"""One trial = one real run in a fresh process: `python -m diffexp.tune.trial CONFIG_YAML [PARENT_RUN_ID]` runs
`diffexp.run.execute` on the composed config (a child MLflow run of the tuning's parent when tracked, reviewed
against `review.reference`), supervised like every engine process (diffexp.supervise: timeout, Ctrl-C and SIGTERM
empty its process group). A fresh process per trial gives each its own VRAM cap, allocator and OOM."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from diffexp import rundir
from diffexp.config.schema import Config
from diffexp.results import RunResult

log = logging.getLogger(__name__)

TRIAL_CONFIG, TRIAL_OUTCOME, CONSOLE_LOG = rundir.CONFIG_YAML, "trial.json", "console.log"


@dataclass
class Ran:
    """What a trial process left: its run id (or "untracked"), status, result, the error, its peak host RSS."""

    returncode: int
    run_id: Optional[str] = None
    status: str = "FAILED"
    result: Optional[RunResult] = None
    error: Optional[str] = None
    host_rss_gib: Optional[float] = None
    correctness: Optional[str] = None
    tail: list[str] = field(default_factory=list)


class RssSampler(threading.Thread):
    """Peak resident memory of this process's descendants (the trial's process tree), sampled every 0.2 s: the
    host memory a trial really used, on any device."""

    def __init__(self, interval_s: float = 0.2):
        super().__init__(daemon=True)
        self.interval_s, self.peak_bytes = interval_s, 0
        self._done = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._done.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            self._done.wait(self.interval_s)

    def stop(self) -> Optional[float]:
        self._done.set()
        self.join(timeout=2)
        return self.peak_bytes / 2**30 if self.peak_bytes else None


def launch(cfg: Config, trial_dir: Path, env: dict[str, str], parent_run_id: Optional[str], timeout_s: float) -> Ran:
    """Run `cfg` as a trial process in trial_dir; never raises for a failed run (Ctrl-C and SIGTERM do raise)."""
    from diffexp.supervise import parent_pid_env, run_streaming

    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / TRIAL_CONFIG).write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    command = [sys.executable, "-m", "diffexp.tune.trial", str(trial_dir / TRIAL_CONFIG)]
    if parent_run_id:
        command.append(parent_run_id)
    sampler = RssSampler()
    sampler.start()
    try:
        code, tail = run_streaming(
            command,
            # The trial dies with the tuning: a tuning killed outright must not leave it writing on into the
            # folder its resumed session gives the next trial.
            {**os.environ, "PYTHONUNBUFFERED": "1", **parent_pid_env(), **env},
            trial_dir / CONSOLE_LOG,
            timeout_s,
            echo=None,
            what="a tuning trial",
        )
    except Exception as exc:  # EngineTimeout: the trial ran too long, which is a result of the trial
        sampler.stop()
        return Ran(returncode=-1, error=str(exc))
    finally:
        rss = sampler.stop()
    ran = Ran(returncode=code, host_rss_gib=rss, tail=tail)
    outcome = trial_dir / TRIAL_OUTCOME
    if outcome.is_file():
        data = json.loads(outcome.read_text())
        ran.run_id, ran.status, ran.error = data.get("run_id"), data.get("status", "FAILED"), data.get("error")
        ran.correctness = data.get("correctness")
    if (trial_dir / rundir.METRICS_JSON).is_file():
        ran.result = RunResult.read_json(trial_dir / rundir.METRICS_JSON)
    if ran.error is None and (code != 0 or ran.result is None):
        ran.error = f"exit status {code}: " + " | ".join(line for line in tail[-5:] if line.strip())
    return ran


def _correctness(outcome) -> Optional[str]:
    if outcome.run_id == "untracked":
        return None
    from diffexp import names
    from diffexp.tracking.store import client_for

    run = client_for(outcome.tracking_uri).get_run(outcome.run_id)
    return run.data.tags.get(names.CORRECTNESS)


def main(argv: list[str]) -> int:
    """The trial process: execute the run, then say what happened in trial.json (also for a failed run)."""
    import signal

    from diffexp.config.store import load_config_yaml
    from diffexp.logs import quiet_libraries
    from diffexp.run import execute
    from diffexp.supervise import die_with_parent

    die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    config_yaml = Path(argv[0])
    parent = argv[1] if len(argv) > 1 else None
    cfg = load_config_yaml(config_yaml)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = config_yaml.parent / TRIAL_OUTCOME
    try:
        outcome = execute(cfg, config_yaml.parent, parent_run_id=parent)
    except Exception as exc:  # recorded FAILED by execute (an OOM under the VRAM cap lands here)
        out.write_text(json.dumps({"status": "FAILED", "error": f"{type(exc).__name__}: {exc}"[:2000]}))
        raise
    out.write_text(
        json.dumps(
            {
                "run_id": outcome.run_id,
                "status": outcome.status,
                "correctness": _correctness(outcome),
                "error": outcome.result.invalid_reason if outcome.result and not outcome.result.valid else None,
            }
        )
    )
    return 0 if outcome.status == "FINISHED" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
