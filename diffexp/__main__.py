"""`python -m diffexp model=… parallel=… …`: compose with Hydra, then hand over to diffexp.run."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from diffexp.config import CONF_DIR, register, to_config
from diffexp.errors import DiffexpError, RunInterrupted
from diffexp.logs import quiet_libraries

log = logging.getLogger("diffexp")

register()  # also points Hydra at multirun_sweeps/


# Exit statuses (README, "Composing a run"): 2 an unusable configuration (Hydra's composition errors
# and diffexp's validation alike), 1 a run or sweep point that failed, 130 interrupted.
CONFIG_ERROR = 2
_task_started = False  # False while Hydra composes: a SystemExit(1) then is a composition error


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _main(cfg: DictConfig) -> Optional[str]:
    global _task_started
    _task_started = True
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        # A failed point becomes a FAILED child run and the sweep goes on (diffexp.sweeps.job).
        from diffexp.sweeps.job import run_point

        quiet_libraries()
        return run_point(cfg)  # the status, counted by the sweep callback for the exit status
    from diffexp.engines import validate
    from diffexp.run import execute, print_summary

    try:
        config = to_config(cfg)
        # Before anything imports diffusers and transformers (seconds): a config error is reported as soon as the
        # config is composed. The run's tracking agent then opens the store while this process loads the model.
        validate(config)
        outcome = execute(config, Path(HydraConfig.get().runtime.output_dir), tracking_agent=True)
    except DiffexpError as exc:
        log.error("%s", exc)
        sys.exit(CONFIG_ERROR)
    if outcome is not None:
        print_summary(outcome)
        if outcome.status != "FINISHED":
            sys.exit(1)
    return None


def main() -> None:
    from diffexp.sweeps.callback import abandon_open_sweeps, failed_points

    try:
        _main()
    except SystemExit as exc:
        if exc.code == 1 and not _task_started:  # Hydra reports composition errors with status 1
            sys.exit(CONFIG_ERROR)
        raise
    except (KeyboardInterrupt, RunInterrupted):
        # A further Ctrl-C now would raise out of this handler with a traceback instead of exiting 130.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # The run is already recorded as KILLED; a sweep's parent is ended KILLED here (os._exit skips
        # atexit). Then leave now: a library thread that is not a daemon (or a wedged one after the
        # interrupt) must not keep an interrupted process alive.
        abandon_open_sweeps()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    if failed_points():
        log.error("%d sweep point(s) failed", failed_points())
        sys.exit(1)


if __name__ == "__main__":
    main()
